"""Races with another writer, made deterministic: the other write is held uncommitted until the
request under test waits on it, then committed."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


async def against_an_uncommitted_write(db_engine: AsyncEngine, write_sql: str, params: dict[str, Any],
                                       request: Coroutine[Any, Any, Any]) -> Any:
    """`request`'s result, run while `write_sql` is held uncommitted by another transaction,
    which commits as soon as the request waits on one of its locks."""
    other = await db_engine.connect()
    try:
        await other.execute(text(write_sql), params)
        running = asyncio.create_task(request)
        for _ in range(200):
            waiting = (await other.execute(text(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'"))).scalar_one()
            if waiting:
                break
            await asyncio.sleep(0.05)
        assert waiting == 1, "the request never waited on the other write"
        await other.commit()
        return await running
    finally:
        await other.close()
