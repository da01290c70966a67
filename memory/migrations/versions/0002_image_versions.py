"""Image versions of a dialogue: table ``image_versions``, filled in for the dialogues already stored.

Every dialogue gets version 0 (its starting image); every stored turn that ran on another image than the turn
before it (the caller sent a new image) gets the next version, as ``append_turn`` records it from now on.  Both
fills are single ``INSERT ... SELECT`` statements (window functions: SQLite >= 3.25 and Postgres), so they work on
both backends and in offline mode (``alembic upgrade head --sql``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STARTING_IMAGES = """
INSERT INTO image_versions (dialogue_id, number, image_hash, created_at)
SELECT id, 0, image_hash, created_at FROM dialogues
"""

# A turn whose image differs from the image of the turn before it (the dialogue's for the first turn) started a
# new version; ROW_NUMBER runs after the WHERE, so those versions are numbered 1, 2, ... per dialogue.
_SENT_IMAGES = """
INSERT INTO image_versions (dialogue_id, number, image_hash, turn_id, created_at)
SELECT dialogue_id, ROW_NUMBER() OVER (PARTITION BY dialogue_id ORDER BY turn_index), image_hash, id, created_at
FROM (
    SELECT t.id, t.dialogue_id, t.turn_index, t.image_hash, t.created_at,
           COALESCE(LAG(t.image_hash) OVER (PARTITION BY t.dialogue_id ORDER BY t.turn_index), d.image_hash)
               AS before_hash
    FROM turns t JOIN dialogues d ON d.id = t.dialogue_id
) AS moves
WHERE image_hash <> before_hash
"""


def upgrade() -> None:
    op.create_table(
        "image_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dialogue_id", sa.String(length=128), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("image_hash", sa.String(length=64), nullable=False),
        sa.Column("parent_hash", sa.String(length=64), nullable=True),
        sa.Column("turn_id", sa.Integer(), nullable=True),
        sa.Column("tool", sa.String(length=64), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=True),
        sa.Column("region_number", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("number >= 0", name=op.f("ck_image_versions_number_nonnegative")),
        sa.ForeignKeyConstraint(
            ["dialogue_id"], ["dialogues.id"], name=op.f("fk_image_versions_dialogue_id_dialogues"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["image_hash"], ["images.hash"], name=op.f("fk_image_versions_image_hash_images")),
        sa.ForeignKeyConstraint(["parent_hash"], ["images.hash"], name=op.f("fk_image_versions_parent_hash_images")),
        sa.ForeignKeyConstraint(
            ["turn_id"], ["turns.id"], name=op.f("fk_image_versions_turn_id_turns"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_versions")),
        sa.UniqueConstraint("dialogue_id", "number", name=op.f("uq_image_versions_dialogue_id_number")),
    )
    op.create_index(op.f("ix_image_versions_image_hash"), "image_versions", ["image_hash"])
    op.create_index(op.f("ix_image_versions_turn_id"), "image_versions", ["turn_id"])
    op.execute(_STARTING_IMAGES)
    op.execute(_SENT_IMAGES)


def downgrade() -> None:
    op.drop_index(op.f("ix_image_versions_turn_id"), table_name="image_versions")
    op.drop_index(op.f("ix_image_versions_image_hash"), table_name="image_versions")
    op.drop_table("image_versions")
