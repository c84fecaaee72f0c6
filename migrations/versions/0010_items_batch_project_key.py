"""items: one composite foreign key (batch_id, project_id) to batches

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 23:40:00

Items had two foreign keys, to batches and to projects, and PostgreSQL checks each with a trigger
per inserted row: a third of the cost of copying a chunk of items in. One key on (batch_id,
project_id) to batches(id, project_id) checks both at once, and says what was only assumed
before: an item belongs to its batch's project (the batch's own key reaches the project).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.create_unique_constraint(op.f("uq_batches_id"), ["id", "project_id"])
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_items_batch_id_batches"), type_="foreignkey")
        batch_op.drop_constraint(op.f("fk_items_project_id_projects"), type_="foreignkey")
        batch_op.create_foreign_key(
            op.f("fk_items_batch_id_batches"), "batches", ["batch_id", "project_id"], ["id", "project_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_items_batch_id_batches"), type_="foreignkey")
        batch_op.create_foreign_key(op.f("fk_items_project_id_projects"), "projects", ["project_id"], ["id"])
        batch_op.create_foreign_key(op.f("fk_items_batch_id_batches"), "batches", ["batch_id"], ["id"])
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_batches_id"), type_="unique")
