"""items: on PostgreSQL, the batch key checked once per statement, not by a trigger per row

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 23:00:00

A foreign key is checked by a trigger per inserted row, each a query of its own, a large share of
what PostgreSQL spends storing an item, and ingest's COPY into items is bound by PostgreSQL's
core (docs/performance.md). The same rule is now held by a statement trigger over the inserted
rows, one set-based check per statement: every new item names a batch of its own project (the
batches it names are locked FOR KEY SHARE, in id order, as the foreign key locks them, so a
concurrent delete waits). Row triggers, fired only by what changes the key, refuse an item moved
to a batch of another project and a batch deleted or re-keyed while items name it. SQLite keeps
the foreign key (the model's): its checks cost no round trips.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VIOLATION = "USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'fk_items_batch_id_batches'"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_constraint("fk_items_batch_id_batches", "items", type_="foreignkey")
    op.execute(
        f"""
        CREATE FUNCTION items_name_their_batch() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM 1 FROM batches WHERE id IN (SELECT DISTINCT batch_id FROM new_items) ORDER BY id FOR KEY SHARE;
            IF EXISTS (
                SELECT 1 FROM (SELECT DISTINCT batch_id, project_id FROM new_items) n
                WHERE NOT EXISTS (SELECT 1 FROM batches b WHERE b.id = n.batch_id AND b.project_id = n.project_id)
            ) THEN
                RAISE EXCEPTION 'an item names no batch of its project' {VIOLATION};
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER items_batch_insert AFTER INSERT ON items
        REFERENCING NEW TABLE AS new_items FOR EACH STATEMENT EXECUTE FUNCTION items_name_their_batch()
        """
    )
    # Nothing moves an item to another batch: a row trigger, fired only by an UPDATE that sets
    # these columns, so the review's status flips of whole batches capture no transition table.
    op.execute(
        f"""
        CREATE FUNCTION item_names_its_batch() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM 1 FROM batches WHERE id = NEW.batch_id AND project_id = NEW.project_id FOR KEY SHARE;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'an item names no batch of its project' {VIOLATION};
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER items_batch_update AFTER UPDATE OF batch_id, project_id ON items
        FOR EACH ROW EXECUTE FUNCTION item_names_its_batch()
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION batch_keeps_its_items() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM items WHERE batch_id = OLD.id AND project_id = OLD.project_id) THEN
                RAISE EXCEPTION 'items still name this batch' {VIOLATION};
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER batches_items_delete AFTER DELETE ON batches
        FOR EACH ROW EXECUTE FUNCTION batch_keeps_its_items()
        """
    )
    op.execute(
        """
        CREATE TRIGGER batches_items_update AFTER UPDATE OF id, project_id ON batches
        FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.project_id IS DISTINCT FROM NEW.project_id)
        EXECUTE FUNCTION batch_keeps_its_items()
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table in (
        ("items_batch_insert", "items"),
        ("items_batch_update", "items"),
        ("batches_items_delete", "batches"),
        ("batches_items_update", "batches"),
    ):
        op.execute(f"DROP TRIGGER {name} ON {table}")
    for function in ("items_name_their_batch", "item_names_its_batch", "batch_keeps_its_items"):
        op.execute(f"DROP FUNCTION {function}()")
    op.create_foreign_key(
        "fk_items_batch_id_batches", "items", "batches", ["batch_id", "project_id"], ["id", "project_id"]
    )
