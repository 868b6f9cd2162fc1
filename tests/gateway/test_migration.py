"""The gateway's migrations are reversible: down to base and up again leaves the same table."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from alembic import command

from services.common.migrate import alembic_config
from tests.conftest import fetch

TABLES = "select tablename from pg_tables where schemaname = 'gateway' order by tablename"
COLUMNS = ("select column_name, data_type from information_schema.columns "
           "where table_schema = 'gateway' and table_name = 'integration_clients' order by ordinal_position")


async def test_downgrade_and_upgrade(database_url, db_engine):
    assert [t["tablename"] for t in await fetch(db_engine, TABLES)] == [
        "alembic_version", "audit_events", "integration_clients"]
    columns = await fetch(db_engine, COLUMNS)
    assert [(c["column_name"], c["data_type"]) for c in columns] == [
        ("id", "uuid"), ("name", "text"), ("role", "text"), ("districts", "ARRAY"), ("secret_hash", "text"),
        ("created_at", "timestamp with time zone"), ("created_by", "text"),
        ("revoked_at", "timestamp with time zone"), ("revoked_by", "text")]
    config = alembic_config("gateway", database_url)
    with ThreadPoolExecutor(1) as pool:  # Alembic runs its own event loop
        pool.submit(command.downgrade, config, "gateway_0003").result()
        assert [t["tablename"] for t in await fetch(db_engine, TABLES)] == ["alembic_version", "integration_clients"]
        pool.submit(command.downgrade, config, "gateway_0002").result()
        assert await fetch(db_engine, TABLES) == [{"tablename": "alembic_version"}]
        pool.submit(command.downgrade, config, "base").result()
        pool.submit(command.upgrade, config, "head").result()
    assert await fetch(db_engine, COLUMNS) == columns
