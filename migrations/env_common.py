"""The body of every service's Alembic env.py: migrate one schema, keep its own version table.

Migrations are static SQL-level scripts (no autogenerate at run time), so target_metadata is None.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.db import async_url


def _run_sync(connection, schema: str) -> None:
    context.configure(connection=connection, target_metadata=None, version_table="alembic_version",
                      version_table_schema=schema, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str, schema: str) -> None:
    engine = create_async_engine(async_url(url), poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await conn.commit()
            await conn.run_sync(_run_sync, schema)
            await conn.commit()
    finally:
        await engine.dispose()


def run(schema: str) -> None:
    if context.is_offline_mode():
        context.configure(url=context.config.get_main_option("sqlalchemy.url"), literal_binds=True,
                          version_table="alembic_version", version_table_schema=schema)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_online(context.config.get_main_option("sqlalchemy.url"), schema))
