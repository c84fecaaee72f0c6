"""reviews by reviewer assignment: a delivery's lineage reads an item's reviews through them

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 18:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_reviews_reviewer_assignment_id", "reviews", ["reviewer_assignment_id"])


def downgrade() -> None:
    op.drop_index("ix_reviews_reviewer_assignment_id", table_name="reviews")
