"""A change-feed consumer for tests: read what the feed gives now, or poll until enough arrived."""

from __future__ import annotations

import asyncio

import httpx


async def read_all(client: httpx.AsyncClient, cursor: str | None, path: str = "/v1/changes"):
    """Read pages until the feed has nothing more to give right now."""
    seen = []
    while True:
        page = (await client.get(path, params={"after": cursor, "limit": 3})).json()
        seen.extend(page["items"])
        if cursor == page["next_cursor"]:
            return seen, cursor
        cursor = page["next_cursor"]


async def drain(client: httpx.AsyncClient, cursor: str | None, expected: int, seconds: float = 15.0):
    """Poll like a consumer until `expected` changes arrived. Transaction ids are cluster-wide, so a
    transaction in flight elsewhere on the server (another test process) may hold the feed back for
    a moment; it delays delivery, it never loses or repeats a change."""
    seen = []
    deadline = asyncio.get_running_loop().time() + seconds
    while len(seen) < expected and asyncio.get_running_loop().time() < deadline:
        more, cursor = await read_all(client, cursor)
        seen.extend(more)
        if len(seen) < expected:
            await asyncio.sleep(0.05)
    return seen, cursor
