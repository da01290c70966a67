"""Initial schema: images, dialogues, turns, regions, citations.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("parent_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["parent_hash"], ["images.hash"], name=op.f("fk_images_parent_hash_images")),
        sa.PrimaryKeyConstraint("hash", name=op.f("pk_images")),
    )
    op.create_index(op.f("ix_images_parent_hash"), "images", ["parent_hash"])

    op.create_table(
        "dialogues",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("image_hash", sa.String(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["image_hash"], ["images.hash"], name=op.f("fk_dialogues_image_hash_images")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dialogues")),
    )
    op.create_index(op.f("ix_dialogues_created_at"), "dialogues", ["created_at"])
    op.create_index(op.f("ix_dialogues_image_hash"), "dialogues", ["image_hash"])

    op.create_table(
        "turns",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dialogue_id", sa.String(length=128), nullable=False),
        sa.Column("turn_index", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("rendered_question", sa.Text(), nullable=False),
        sa.Column("image_hash", sa.String(length=64), nullable=False),
        sa.Column("frame", sa.Text(), nullable=False),
        sa.Column("scene", sa.Text(), nullable=True),
        sa.Column("focus", sa.Text(), nullable=True),
        sa.Column("think", sa.Text(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("raw_text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.Column("usage", sa.JSON(), nullable=False),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("trace_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("turn_index >= 0", name=op.f("ck_turns_turn_index_nonnegative")),
        sa.ForeignKeyConstraint(
            ["dialogue_id"], ["dialogues.id"], name=op.f("fk_turns_dialogue_id_dialogues"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["image_hash"], ["images.hash"], name=op.f("fk_turns_image_hash_images")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_turns")),
        sa.UniqueConstraint("dialogue_id", "key", name=op.f("uq_turns_dialogue_id_key")),
        sa.UniqueConstraint("dialogue_id", "turn_index", name=op.f("uq_turns_dialogue_id_turn_index")),
    )
    op.create_index(op.f("ix_turns_image_hash"), "turns", ["image_hash"])

    op.create_table(
        "regions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dialogue_id", sa.String(length=128), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("turn_id", sa.Integer(), nullable=False),
        sa.Column("image_hash", sa.String(length=64), nullable=False),
        sa.Column("x1", sa.Double(), nullable=False),
        sa.Column("y1", sa.Double(), nullable=False),
        sa.Column("x2", sa.Double(), nullable=False),
        sa.Column("y2", sa.Double(), nullable=False),
        sa.Column("point_x", sa.Double(), nullable=True),
        sa.Column("point_y", sa.Double(), nullable=True),
        sa.Column("mask_height", sa.Integer(), nullable=True),
        sa.Column("mask_width", sa.Integer(), nullable=True),
        sa.Column("mask_counts", sa.Text(), nullable=True),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("score", sa.Double(), nullable=True),
        sa.CheckConstraint("number >= 1", name=op.f("ck_regions_number_positive")),
        sa.ForeignKeyConstraint(
            ["dialogue_id"], ["dialogues.id"], name=op.f("fk_regions_dialogue_id_dialogues"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["image_hash"], ["images.hash"], name=op.f("fk_regions_image_hash_images")),
        sa.ForeignKeyConstraint(["turn_id"], ["turns.id"], name=op.f("fk_regions_turn_id_turns"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_regions")),
        sa.UniqueConstraint("dialogue_id", "number", name=op.f("uq_regions_dialogue_id_number")),
    )
    op.create_index(op.f("ix_regions_image_hash"), "regions", ["image_hash"])
    op.create_index(op.f("ix_regions_turn_id"), "regions", ["turn_id"])

    op.create_table(
        "citations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("turn_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=True),
        sa.Column("x1", sa.Double(), nullable=True),
        sa.Column("y1", sa.Double(), nullable=True),
        sa.Column("x2", sa.Double(), nullable=True),
        sa.Column("y2", sa.Double(), nullable=True),
        sa.Column("model_box", sa.JSON(), nullable=True),
        sa.Column("verified", sa.Boolean(), nullable=True),
        sa.CheckConstraint("kind IN ('question', 'think')", name=op.f("ck_citations_kind_known")),
        sa.ForeignKeyConstraint(
            ["region_id"], ["regions.id"], name=op.f("fk_citations_region_id_regions"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["turn_id"], ["turns.id"], name=op.f("fk_citations_turn_id_turns"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_citations")),
        sa.UniqueConstraint("turn_id", "kind", "position", name=op.f("uq_citations_turn_id_kind_position")),
    )
    op.create_index(op.f("ix_citations_region_id"), "citations", ["region_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_citations_region_id"), table_name="citations")

    op.drop_table("citations")
    op.drop_index(op.f("ix_regions_turn_id"), table_name="regions")
    op.drop_index(op.f("ix_regions_image_hash"), table_name="regions")

    op.drop_table("regions")
    op.drop_index(op.f("ix_turns_image_hash"), table_name="turns")

    op.drop_table("turns")
    op.drop_index(op.f("ix_dialogues_image_hash"), table_name="dialogues")
    op.drop_index(op.f("ix_dialogues_created_at"), table_name="dialogues")

    op.drop_table("dialogues")
    op.drop_index(op.f("ix_images_parent_hash"), table_name="images")

    op.drop_table("images")
