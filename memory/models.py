"""The SQL schema of the region memory, as typed SQLAlchemy 2 ORM classes.

Six tables (docs/memory.md draws them): ``images`` (content-addressed image versions, with the image each was
edited from), ``dialogues``, ``turns``, ``regions`` (R1, R2, ... per dialogue), ``citations`` (regions a
question referenced, and boxes the model cited in <think>) and ``image_versions`` (the images a dialogue ran on or
made, numbered 0, 1, ...).  Every box and point is in original-image pixels (float xyxy, after EXIF transpose).
Deleting a dialogue cascades to its turns, regions, citations and versions; images stay.

The Alembic migrations in ``migrations/versions`` must create exactly this schema (a test compares them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "CitationRow", "DialogueRow", "ImageRow", "ImageVersionRow", "RegionRow", "TurnRow"]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint names are deterministic, so migrations (and SQLite batch mode) can refer to them."""

HASH = String(64)
"""sha256 hex digest of an image's size and RGB pixels (see regionreasoner.core.images.image_hash)."""


class Base(DeclarativeBase):
    """Declarative base of the memory tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ImageRow(Base):
    """A stored image version; its pixels live in the ImageStore under the same hash."""

    __tablename__ = "images"

    hash: Mapped[str] = mapped_column(HASH, primary_key=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    parent_hash: Mapped[str | None] = mapped_column(HASH, ForeignKey("images.hash"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DialogueRow(Base):
    """A dialogue about one image (the image it started on).

    ``owner``: the principal that may read and write it (the server derives it from an auth token); NULL: no
    owner (in-process use, and every dialogue stored before revision 0003).
    """

    __tablename__ = "dialogues"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    image_hash: Mapped[str] = mapped_column(HASH, ForeignKey("images.hash"), index=True)
    title: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    owner: Mapped[str | None] = mapped_column(String(128), index=True)


class TurnRow(Base):
    """One question and the model's answer; ``turn_index`` is 0-based per dialogue."""

    __tablename__ = "turns"
    __table_args__ = (
        UniqueConstraint("dialogue_id", "turn_index"),
        UniqueConstraint("dialogue_id", "key"),
        CheckConstraint("turn_index >= 0", name="turn_index_nonnegative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dialogue_id: Mapped[str] = mapped_column(String(128), ForeignKey("dialogues.id", ondelete="CASCADE"))
    turn_index: Mapped[int] = mapped_column(Integer)
    key: Mapped[str | None] = mapped_column(String(256))
    content_hash: Mapped[str] = mapped_column(String(64))
    question: Mapped[str] = mapped_column(Text)
    rendered_question: Mapped[str] = mapped_column(Text)
    image_hash: Mapped[str] = mapped_column(HASH, ForeignKey("images.hash"), index=True)
    frame: Mapped[str] = mapped_column(Text)
    scene: Mapped[str | None] = mapped_column(Text)
    focus: Mapped[str | None] = mapped_column(Text)
    think: Mapped[str | None] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text)
    raw_text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    problems: Mapped[list[Any]] = mapped_column(JSON)
    usage: Mapped[dict[str, Any]] = mapped_column(JSON)
    model: Mapped[str | None] = mapped_column(Text)
    trace_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RegionRow(Base):
    """A named region ``R<number>`` of a dialogue; box and point in original pixels of ``image_hash``.

    ``mask_height``/``mask_width``/``mask_counts`` hold a COCO compressed RLE (all three or none).
    """

    __tablename__ = "regions"
    __table_args__ = (
        UniqueConstraint("dialogue_id", "number"),
        CheckConstraint("number >= 1", name="number_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dialogue_id: Mapped[str] = mapped_column(String(128), ForeignKey("dialogues.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    turn_id: Mapped[int] = mapped_column(Integer, ForeignKey("turns.id", ondelete="CASCADE"), index=True)
    image_hash: Mapped[str] = mapped_column(HASH, ForeignKey("images.hash"), index=True)
    x1: Mapped[float] = mapped_column(Double)
    y1: Mapped[float] = mapped_column(Double)
    x2: Mapped[float] = mapped_column(Double)
    y2: Mapped[float] = mapped_column(Double)
    point_x: Mapped[float | None] = mapped_column(Double)
    point_y: Mapped[float | None] = mapped_column(Double)
    mask_height: Mapped[int | None] = mapped_column(Integer)
    mask_width: Mapped[int | None] = mapped_column(Integer)
    mask_counts: Mapped[str | None] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Double)


class CitationRow(Base):
    """A region reference of a turn, in order (``position``) within its ``kind``.

    ``kind == "question"``: a region the question referenced (``region_id`` set, no box).
    ``kind == "think"``: a box the model cited in <think>: ``x1..y2`` in original pixels, ``model_box`` as the
    model wrote it (its frame), ``region_id`` the referenced region it matches if any, ``verified``.
    """

    __tablename__ = "citations"
    __table_args__ = (
        UniqueConstraint("turn_id", "kind", "position"),
        CheckConstraint("kind IN ('question', 'think')", name="kind_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    turn_id: Mapped[int] = mapped_column(Integer, ForeignKey("turns.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer)
    region_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("regions.id", ondelete="CASCADE"), index=True)
    x1: Mapped[float | None] = mapped_column(Double)
    y1: Mapped[float | None] = mapped_column(Double)
    x2: Mapped[float | None] = mapped_column(Double)
    y2: Mapped[float | None] = mapped_column(Double)
    model_box: Mapped[list[float] | None] = mapped_column(JSON)
    verified: Mapped[bool | None] = mapped_column()


class ImageVersionRow(Base):
    """Version ``number`` (0-based) of a dialogue's image: the image a dialogue runs on from then on.

    Number 0 is the starting image (``turn_id`` NULL).  A turn the caller sent another image with adds one for that
    image (``tool`` NULL), and each image a tool of a turn made adds one (``generate``, ``inpaint``: ``tool``,
    ``prompt``, ``region_number``), in that order.  ``parent_hash`` is the image it was edited from.  A version
    made outside any turn (the ``regionreasoner inpaint`` command) has ``turn_id`` NULL and ``number > 0``.
    """

    __tablename__ = "image_versions"
    __table_args__ = (
        UniqueConstraint("dialogue_id", "number"),
        CheckConstraint("number >= 0", name="number_nonnegative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dialogue_id: Mapped[str] = mapped_column(String(128), ForeignKey("dialogues.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    image_hash: Mapped[str] = mapped_column(HASH, ForeignKey("images.hash"), index=True)
    parent_hash: Mapped[str | None] = mapped_column(HASH, ForeignKey("images.hash"))
    turn_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("turns.id", ondelete="CASCADE"), index=True)
    tool: Mapped[str | None] = mapped_column(String(64))
    prompt: Mapped[str | None] = mapped_column(Text)
    region_number: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
