"""drafts end with their task (a trigger); a retry schedule per webhook endpoint

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 08:00:00

A draft belongs to an open task. Whatever closes the task (a submission, a skip, expiry, a
re-dispatch) drops its draft in the same statement, by a trigger: a draft saved by a request that
held the task's row lock just before a submission took it was committed after the submission's
statement began, and a DELETE in that statement could not see it. The trigger's DELETE takes a
snapshot of its own, and sees it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "clients",
        sa.Column("webhook_retry_schedule", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION drop_closed_task_draft() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                DELETE FROM assignment_drafts WHERE assignment_id = NEW.id;
                RETURN NULL;
            END $$
            """
        )
        op.execute(
            """
            CREATE TRIGGER assignments_drop_draft AFTER UPDATE OF status ON assignments
            FOR EACH ROW WHEN (OLD.status = 'assigned' AND NEW.status <> 'assigned')
            EXECUTE FUNCTION drop_closed_task_draft()
            """
        )
    else:
        op.execute(
            """
            CREATE TRIGGER assignments_drop_draft AFTER UPDATE OF status ON assignments
            FOR EACH ROW WHEN OLD.status = 'assigned' AND NEW.status <> 'assigned'
            BEGIN
                DELETE FROM assignment_drafts WHERE assignment_id = NEW.id;
            END
            """
        )
    # Drafts already left on closed tasks go now.
    op.execute(
        "DELETE FROM assignment_drafts WHERE assignment_id IN (SELECT id FROM assignments WHERE status <> 'assigned')"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER assignments_drop_draft ON assignments")
        op.execute("DROP FUNCTION drop_closed_task_draft()")
    else:
        op.execute("DROP TRIGGER assignments_drop_draft")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("webhook_retry_schedule")
