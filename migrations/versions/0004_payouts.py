"""server-side time on task and the append-only payout ledger

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REFUSE = "payout_entries is append-only: add a correction entry instead"


def upgrade() -> None:
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("worked_seconds", sa.Integer(), nullable=True))
    with op.batch_alter_table("payout_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("entry_key", sa.String(length=200), nullable=False))
        batch_op.create_unique_constraint(batch_op.f("uq_payout_entries_entry_key"), ["entry_key"])
        batch_op.create_index("ix_payout_entries_period", ["period", "expert_id"], unique=False)
    # The ledger's invariant lives in the database: no code path can edit or delete an entry.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION payout_entries_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '{_REFUSE}'; END $$;
            CREATE TRIGGER payout_entries_append_only BEFORE UPDATE OR DELETE ON payout_entries
            FOR EACH ROW EXECUTE FUNCTION payout_entries_refuse_change();
            """
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER payout_entries_no_{event.lower()} BEFORE {event} ON payout_entries "
                f"BEGIN SELECT RAISE(ABORT, '{_REFUSE}'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER payout_entries_append_only ON payout_entries")
        op.execute("DROP FUNCTION payout_entries_refuse_change()")
    else:
        op.execute("DROP TRIGGER payout_entries_no_update")
        op.execute("DROP TRIGGER payout_entries_no_delete")
    with op.batch_alter_table("payout_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_payout_entries_period")
        batch_op.drop_constraint(batch_op.f("uq_payout_entries_entry_key"), type_="unique")
        batch_op.drop_column("entry_key")
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_column("worked_seconds")
        batch_op.drop_column("submitted_at")
        batch_op.drop_column("started_at")
