"""outbox pages compressed with lz4 on PostgreSQL

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 20:00:00

A delivery writes every record into delivery_messages.records once more, as pages of ~256 KB.
With PostgreSQL's default pglz, compressing them was most of the time a delivery spends writing
its outbox; lz4 does the same job several times faster (PostgreSQL 14+, when built with lz4).
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    choices = bind.execute(
        text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
    ).scalar_one_or_none()
    return bool(choices) and "lz4" in choices


def upgrade() -> None:
    if _lz4_available():
        op.execute("ALTER TABLE delivery_messages ALTER COLUMN records SET COMPRESSION lz4")


def downgrade() -> None:
    if _lz4_available():
        op.execute("ALTER TABLE delivery_messages ALTER COLUMN records SET COMPRESSION default")
