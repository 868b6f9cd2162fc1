"""The training migration is reversible: down to base and up again leaves the same tables."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from alembic import command
from sqlalchemy import text

from services.common.migrate import alembic_config
from tests.conftest import fetch

TABLES = "select tablename from pg_tables where schemaname = 'training' order by tablename"


async def test_downgrade_and_upgrade(database_url, db_engine):
    before = await fetch(db_engine, TABLES)
    assert [t["tablename"] for t in before] == [
        "alembic_version", "attendance", "audit_events", "changes", "feed_cursors", "idempotency_keys", "import_files", "imports", "memberships", "sessions",
        "staff_directory", "studios", "training_hours"]
    config = alembic_config("training", database_url)
    with ThreadPoolExecutor(1) as pool:  # Alembic runs its own event loop
        pool.submit(command.downgrade, config, "base").result()
        assert await fetch(db_engine, TABLES) == [{"tablename": "alembic_version"}]
        pool.submit(command.upgrade, config, "head").result()
    assert await fetch(db_engine, TABLES) == before


async def test_ledger_indexes_an_import_writes(db_engine):
    """An imported credit enters four indexes: the keys, the staff member's window, the date.
    Only studio credits enter the session index (a partial one), which still serves the cascade
    from an attendance to its credit."""
    assert await fetch(db_engine, "select indexdef from pg_indexes where schemaname = 'training' "
                                  "and tablename = 'training_hours' order by indexname") == [
        {"indexdef": "CREATE INDEX ix_training_hours_earned_on ON training.training_hours USING btree (earned_on)"},
        {"indexdef": "CREATE INDEX ix_training_hours_session_id ON training.training_hours USING btree (session_id) "
                     "WHERE (session_id IS NOT NULL)"},
        {"indexdef": "CREATE INDEX ix_training_hours_staff_window ON training.training_hours USING btree "
                     "(staff_id, earned_on, id) INCLUDE (hours)"},
        {"indexdef": "CREATE UNIQUE INDEX pk_training_hours ON training.training_hours USING btree (id)"},
        {"indexdef": "CREATE UNIQUE INDEX uq_training_hours_source_reference ON training.training_hours "
                     "USING btree (source, reference)"}]
    async with db_engine.connect() as conn:
        await conn.execute(text("SET enable_seqscan = off"))
        plan = "\n".join((await conn.execute(text(
            "EXPLAIN DELETE FROM ONLY training.training_hours WHERE session_id = gen_random_uuid() "
            "AND staff_id = gen_random_uuid()"))).scalars())
    assert "ix_training_hours_session_id" in plan, plan
