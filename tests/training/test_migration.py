"""The training migration is reversible: down to base and up again leaves the same tables."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from alembic import command

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
