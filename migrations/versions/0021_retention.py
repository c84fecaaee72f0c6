"""retention: a client's period after which delivered content is purged, and when a batch was

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("clients", sa.Column("retention_days", sa.Integer()))
    op.add_column("batches", sa.Column("purged_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("batches", "purged_at")
    op.drop_column("clients", "retention_days")
