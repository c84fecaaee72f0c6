"""ops notification outbox, batch deadlines and projected finish

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("projected_finish_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "ops_messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("event_key", sa.String(length=200), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("lines", _JSON, nullable=False),
        sa.Column("link", _JSON, nullable=True),
        sa.Column("status", sa.String(length=10), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("status IN ('pending', 'sent', 'dead')", name=op.f("ck_ops_messages_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_messages")),
        sa.UniqueConstraint("event_key", name=op.f("uq_ops_messages_event_key")),
    )
    op.create_index("ix_ops_messages_due", "ops_messages", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_ops_messages_due", table_name="ops_messages")
    op.drop_table("ops_messages")
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_column("projected_finish_at")
        batch_op.drop_column("deadline_at")
