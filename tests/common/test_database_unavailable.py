"""Losing the database is a 503 the caller can retry (problem type `database-unavailable`, a
`Retry-After` header), never a 500; `/readyz` says not ready; and the service recovers by itself
when the database is back.

The service reaches the real test database through a Unix-socket hop that the test can cut
(closing every open connection and removing the socket, as when PostgreSQL dies) and mend.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from tests.conftest import asgi, fetch

PROBLEM = "application/problem+json"
UNAVAILABLE = {"type": "urn:spp:problem:database-unavailable", "title": "Database unavailable",
               "status": 503, "detail": "The database cannot be reached right now; retry shortly."}
SOCKET = ".s.PGSQL.5432"


class SocketHop:
    """Forwards a Unix socket to the database's socket until it is cut."""

    def __init__(self, target: str, directory: Path) -> None:
        self.target = target
        self.path = directory / SOCKET
        self.server: asyncio.AbstractServer | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self.path.unlink(missing_ok=True)
        self.server = await asyncio.start_unix_server(self._serve, path=str(self.path))

    async def cut(self) -> None:
        """Close the listener and every connection, and remove the socket."""
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.close()
        await self.server.wait_closed()
        self.server = None
        self.path.unlink(missing_ok=True)

    def refuse(self) -> None:
        """A socket file nobody listens on: connection refused instead of no such file."""
        self._refusing = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._refusing.bind(str(self.path))

    def close_refusing_socket(self) -> None:
        refusing = getattr(self, "_refusing", None)
        if refusing is not None:
            refusing.close()
            self._refusing = None
        self.path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_unix_connection(self.target)
        self.writers.update((writer, up_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self.writers.difference_update((writer, up_writer))


@pytest.fixture
async def hop(settings) -> AsyncIterator[tuple[SocketHop, str]]:
    """A hop to the test database and the database URL that goes through it."""
    parts = urlsplit(settings.database_url)
    socket_dir = parse_qs(parts.query)["host"][0]
    directory = Path(tempfile.mkdtemp(prefix="spp-hop-", dir="/tmp"))  # socket paths are short
    hop = SocketHop(f"{socket_dir}/{SOCKET}", directory)
    await hop.open()
    try:
        yield hop, f"postgresql://postgres@{parts.path}?host={quote(str(directory), safe='/')}"
    finally:
        if hop.server is not None:
            await hop.cut()
        hop.close_refusing_socket()
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.asynccontextmanager
async def partnership_on(settings, database_url: str, token, **overrides) -> AsyncIterator[tuple]:
    from services.partnership.app import create_app

    app = create_app(settings.model_copy(update={"database_url": database_url, **overrides}))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=asgi(app), base_url="http://partnership",
                                     headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"}) as client:
            yield app, client


def assert_unavailable(response: httpx.Response, request_id: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["retry-after"] == "5"
    assert response.json() == {**UNAVAILABLE, "request_id": request_id}


async def district_codes(db_engine) -> list[str]:
    return [row["code"] for row in await fetch(db_engine, "select code from partnership.districts order by code")]


async def test_reads_writes_and_readyz_answer_503_and_recover_without_restart(settings, hop, token, db_engine):
    hop, url = hop
    async with partnership_on(settings, url, token) as (_, client):
        created = await client.post("/v1/districts", json={"code": "110105", "name": "朝阳区"})
        assert created.status_code == 201
        duplicate = await client.post("/v1/districts", json={"code": "110105", "name": "朝阳区"})
        assert duplicate.status_code == 409  # a broken rule keeps its answer
        assert "retry-after" not in duplicate.headers
        assert (await client.get("/readyz")).status_code == 200

        # PostgreSQL goes away: the pooled connections die, new ones find no socket.
        await hop.cut()
        for attempt in range(3):  # first the dead pooled connection, then failed connects
            read = await client.get("/v1/districts", headers={"X-Request-ID": f"read-{attempt}"})
            assert_unavailable(read, f"read-{attempt}")
            write = await client.post("/v1/districts", json={"code": "110108", "name": "海淀区"},
                                      headers={"X-Request-ID": f"write-{attempt}"})
            assert_unavailable(write, f"write-{attempt}")
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.headers["content-type"] == PROBLEM
        assert ready.json()["type"] == "urn:spp:problem:not-ready"

        # A socket nobody listens on: connection refused is the same answer.
        hop.refuse()
        assert_unavailable(await client.get("/v1/districts/110105", headers={"X-Request-ID": "refused"}),
                           "refused")
        assert (await client.get("/readyz")).status_code == 503
        hop.close_refusing_socket()

        # It is back: the same app serves again.
        await hop.open()
        assert (await client.get("/readyz")).status_code == 200
        listed = await client.get("/v1/districts")
        assert listed.status_code == 200
        assert [d["code"] for d in listed.json()["items"]] == ["110105"]
        again = await client.post("/v1/districts", json={"code": "110108", "name": "海淀区"})
        assert again.status_code == 201
    assert await district_codes(db_engine) == ["110105", "110108"]


async def test_a_saturated_pool_is_503_too(settings, token, db_engine):
    async with partnership_on(settings, settings.database_url, token, db_pool_size=1, db_max_overflow=0,
                              db_pool_timeout=0.2) as (app, client):
        async with app.state.engine.connect():  # the only connection is taken
            response = await client.get("/v1/districts", headers={"X-Request-ID": "pool"})
        assert_unavailable(response, "pool")
        assert (await client.get("/v1/districts")).status_code == 200


async def test_gateway_passes_the_503_through_and_views_mark_the_part_degraded(
        settings, hop, token, rotation_app, training_app):
    from gateway.app import create_app

    hop, url = hop
    async with partnership_on(settings, url, token) as (partnership_app, _):
        gateway = create_app(settings, transports={"partnership": asgi(partnership_app),
                                                   "rotation": asgi(rotation_app),
                                                   "training": asgi(training_app)})
        async with gateway.router.lifespan_context(gateway):
            async with httpx.AsyncClient(transport=asgi(gateway), base_url="http://gateway",
                                         headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"}) as client:
                await hop.cut()
                passed = await client.get("/api/v1/districts", headers={"X-Request-ID": "via-gateway"})
                assert_unavailable(passed, "via-gateway")
                view = await client.get("/api/v1/districts/110105/overview",
                                        params={"as_of": "2025-03-01", "academic_year": 2024})
                assert view.status_code == 200, view.text
                assert view.json()["degraded"] == ["partnership"]
                assert view.json()["partnership"] is None
                # The balance is rotation's (its school directory), still answering: no schools here.
                empty = {"school_count": 0, "enrollment": 0, "backbone": 0, "mean": None, "cv": None,
                         "schools_below_one": 0}
                balance = view.json()["balance"]
                assert {section: {k: balance[section][k] for k in empty} for section in balance} == {
                    "primary": empty, "junior": empty}
