"""Dialogue ownership: a nullable, indexed ``dialogues.owner`` (the principal that may read and write it).

Dialogues stored before this revision get owner NULL (no owner), which is what in-process use writes from now on;
the HTTP server writes the principal it derives from an auth token.  Adding a nullable column without a server
default is an ``ALTER TABLE ... ADD COLUMN`` on both backends (no table copy in SQLite's batch mode), so it also
works in offline mode (``alembic upgrade head --sql``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dialogues") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=128), nullable=True))
        batch.create_index(batch.f("ix_dialogues_owner"), ["owner"])


def downgrade() -> None:
    # recreate="never": SQLite >= 3.35 drops the (no longer indexed) column in place.  Batch mode's copy-and-rename
    # would DROP TABLE dialogues inside the migration's transaction, where PRAGMA foreign_keys cannot be switched
    # off, and so cascade-delete every turn, region and image version.
    with op.batch_alter_table("dialogues", recreate="never") as batch:
        batch.drop_index(batch.f("ix_dialogues_owner"))
        batch.drop_column("owner")
