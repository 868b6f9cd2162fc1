"""A change-feed consumer for tests: read what the feed gives now, or poll until enough arrived."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import fetch


async def read_all(client: httpx.AsyncClient, cursor: str | None, path: str = "/v1/changes", limit: int = 3):
    """Read pages until the feed has nothing more to give right now."""
    seen = []
    while True:
        page = (await client.get(path, params={"after": cursor, "limit": limit})).json()
        seen.extend(page["items"])
        if cursor == page["next_cursor"]:
            return seen, cursor
        cursor = page["next_cursor"]


async def feed_items(client: httpx.AsyncClient, expected: int) -> list[dict]:
    """The service's feed from its start, as an integrator reads it, once `expected` changes are
    readable (see `drain`: a transaction elsewhere on the server may hold them back a moment)."""
    return (await drain(client, None, expected))[0]


async def feed_count(db_engine: AsyncEngine, schema: str) -> int:
    """How many changes `<schema>.changes` holds: an entry for bulk creates holds one per id."""
    [row] = await fetch(db_engine, f"select coalesce(sum(coalesce(cardinality(ids), 1)), 0)::int as n "
                                   f"from {schema}.changes")
    return row["n"]


async def drain(client: httpx.AsyncClient, cursor: str | None, expected: int, seconds: float = 15.0,
                limit: int = 3):
    """Poll like a consumer until `expected` changes arrived. Transaction ids are cluster-wide, so a
    transaction in flight elsewhere on the server (another test process) may hold the feed back for
    a moment; it delays delivery, it never loses or repeats a change."""
    seen = []
    deadline = asyncio.get_running_loop().time() + seconds
    while len(seen) < expected and asyncio.get_running_loop().time() < deadline:
        more, cursor = await read_all(client, cursor, limit=limit)
        seen.extend(more)
        if len(seen) < expected:
            await asyncio.sleep(0.05)
    return seen, cursor


# Each read model beside its source, in the directory's columns, as the tests compare them.
STAFF_SOURCE = ("select id, staff_no, home_school_code, home_district_code, status, version from rotation.staff "
                "order by id")
STAFF_COPY = ("select id, staff_no, home_school_code, home_district_code, status, version "
              "from training.staff_directory order by id")
SCHOOL_SOURCE = ("select code, name, district_code, stage, locality, primary_enrollment, junior_enrollment, "
                 "senior_enrollment, version from partnership.schools order by code")
SCHOOL_COPY = ("select code, name, district_code, stage, locality, primary_enrollment, junior_enrollment, "
               "senior_enrollment, version from rotation.school_directory order by code")


async def synced(db_engine: AsyncEngine, *, staff: bool = True, schools: bool = True,
                 seconds: float = 30.0) -> None:
    """Wait until the local read models hold exactly what their owners hold (the background
    consumers poll every 0.1 s in tests). Compares the tables, not "the feed looks empty", because
    a change may be held back a moment by a transaction in flight elsewhere on the server."""
    pairs = ([(STAFF_SOURCE, STAFF_COPY)] if staff else []) + ([(SCHOOL_SOURCE, SCHOOL_COPY)] if schools else [])
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        behind = [copy for source, copy in pairs if await fetch(db_engine, source) != await fetch(db_engine, copy)]
        if not behind:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"read models still behind after {seconds} s: {behind}")
        await asyncio.sleep(0.02)
