"""items' personal data found at ingest: kinds and counts (never values), and what was done

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable and with no default: adding it rewrites no row, and an item with none found stays NULL.
    op.add_column("items", sa.Column("personal_data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")))


def downgrade() -> None:
    op.drop_column("items", "personal_data")
