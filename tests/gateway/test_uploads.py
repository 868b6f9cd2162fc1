"""Bulk uploads stream through the gateway (issue 10 item 5): never held whole in its memory, under
their own deadline rather than the 2 s call timeout, and never counted by the circuit breaker.

The service behind the gateway here is a small ASGI app served by uvicorn on a loopback port in this
process, so the gateway's httpx client runs over a real socket with real timeouts (an in-process
ASGI transport enforces none), and tracemalloc sees the gateway's allocations while it forwards.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import time
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import uvicorn

from gateway.app import create_app
from services.common.settings import Settings
from tests.conftest import asgi

MIB = 1024 * 1024
CHUNK = 64 * 1024
LIMIT = 32 * MIB
PROBLEM = "application/problem+json"
LOCATION = "/api/v1/imports/training-hours.job-1"
# One CSV line, repeated: the file's bytes are the same on every run and cost nothing to make.
LINE = b"S00000001,2024-06-01,3.5,\xe5\x90\x8d\xe5\xb8\x88\xe5\xb7\xa5\xe4\xbd\x9c\xe5\xae\xa4\n"


def chunk_of(size: int) -> bytes:
    return (LINE * (CHUNK // len(LINE) + 1))[:size]


def digest_of(total: int) -> str:
    digest = hashlib.sha256()
    for start in range(0, total, CHUNK):
        digest.update(chunk_of(min(CHUNK, total - start)))
    return digest.hexdigest()


@dataclass
class Upload:
    """What the service saw of one upload."""

    size: int = 0
    digest: str = ""
    complete: bool = False
    content_length: bytes | None = None
    first_chunk_at: float = 0.0


@dataclass
class SlowService:
    """A service that waits `delay` s before it reads an upload, then reads it all and answers 202
    with a Location, as the services do for a large import. GETs answer at once."""

    delay: float
    uploads: list[Upload] = field(default_factory=list)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "POST":
            upload = Upload(content_length=dict(scope["headers"]).get(b"content-length"))
            self.uploads.append(upload)
            await asyncio.sleep(self.delay)
            digest = hashlib.sha256()
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return  # the upload was cut off: no answer, nothing complete
                if not upload.first_chunk_at:
                    upload.first_chunk_at = time.perf_counter()
                digest.update(message.get("body", b""))
                upload.size += len(message.get("body", b""))
                if not message.get("more_body"):
                    break
            upload.digest, upload.complete = digest.hexdigest(), True
            await _answer(send, 202, {"id": "training-hours.job-1", "status": "running"},
                          [(b"location", LOCATION.encode())])
        else:
            await _answer(send, 200, {"items": [], "next_cursor": None})


async def _answer(send, status: int, body: dict, headers: list | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), *(headers or [])]})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


@asynccontextmanager
async def served(app) -> AsyncIterator[str]:
    """`app` under uvicorn on a free loopback port, in this event loop."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@asynccontextmanager
async def gateway_before(service_url: str, token, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway with the default 2 s call timeout whose training upstream is `service_url`; one
    failure opens its breaker, so a single miscounted upload would show."""
    settings = settings.model_copy(update={"upstream_timeout": 2.0, "breaker_failures": 1, "breaker_cooldown": 30.0,
                                           "training_url": service_url})
    unused = httpx.MockTransport(lambda request: httpx.Response(599))
    app = create_app(settings, transports={"partnership": unused, "rotation": unused})
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=asgi(app), base_url="http://gateway", timeout=60,
                                     headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"}) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


class Sender:
    """The client's file, made chunk by chunk as the gateway reads it."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.last_chunk_at = 0.0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, self.total, CHUNK):
            yield chunk_of(min(CHUNK, self.total - start))
        self.last_chunk_at = time.perf_counter()


async def test_a_slow_20_mb_upload_outlasts_the_call_timeout_and_leaves_the_breaker_closed(token, settings):
    size = 20 * MIB
    service = SlowService(delay=0.0)
    async with served(service) as url, gateway_before(url, token, settings) as gateway:
        # A small upload first, so one-time costs (imports, connections) are not in the peak.
        warm = await gateway.post("/api/v1/imports/training-hours", content=Sender(MIB))
        assert warm.status_code == 202
        service.delay = 2.5  # consumes nothing for longer than the 2 s call timeout
        tracemalloc.start()
        try:
            started = time.perf_counter()
            response = await gateway.post("/api/v1/imports/training-hours", content=Sender(size),
                                          headers={"content-type": "text/csv", "content-length": str(size)})
            elapsed = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert response.status_code == 202, response.text
        assert response.json() == {"id": "training-hours.job-1", "status": "running"}
        assert response.headers["location"] == LOCATION
        assert elapsed > 2.0
        upload = service.uploads[-1]
        assert (upload.complete, upload.size, upload.digest) == (True, size, digest_of(size))
        assert upload.content_length == str(size).encode()
        # Never held whole: the peak of everything this process allocated while the file went
        # through (client, gateway and service alike) stays far below the file's size.
        assert peak < size / 10, f"peak {peak / MIB:.1f} MiB for a {size / MIB:.0f} MiB upload"

        breaker = gateway.app.state.upstreams["training"].breaker
        assert breaker.state == "closed"
        following = await gateway.get("/api/v1/training-hours", params={"limit": 1})
        assert following.status_code == 200
        assert following.json() == {"items": [], "next_cursor": None}


async def test_a_32_mib_file_is_answered_promptly_and_reaches_the_service_while_still_being_sent(token, settings):
    size = LIMIT
    service = SlowService(delay=0.0)
    sender = Sender(size)
    async with served(service) as url, gateway_before(url, token, settings) as gateway:
        started = time.perf_counter()
        response = await gateway.post("/api/v1/imports/training-hours", content=sender,
                                      headers={"content-type": "text/csv", "content-length": str(size)})
        elapsed = time.perf_counter() - started
    assert response.status_code == 202, response.text
    assert response.headers["location"] == LOCATION
    [upload] = service.uploads
    assert (upload.complete, upload.size) == (True, size)
    # Streamed: the service had the first chunk before the client had made the last one.
    assert upload.first_chunk_at < sender.last_chunk_at
    # The gateway adds no seconds to a service that answers promptly.
    assert elapsed < 2.0, f"{elapsed:.2f} s"


async def test_a_body_over_32_mib_is_refused_413_while_streaming(token, settings):
    size = LIMIT + 3 * CHUNK
    service = SlowService(delay=0.0)
    async with served(service) as url, gateway_before(url, token, settings) as gateway:
        warm = await gateway.post("/api/v1/imports/training-hours", content=Sender(MIB))
        assert warm.status_code == 202
        tracemalloc.start()
        try:
            # No Content-Length (chunked): only counting the stream can find the body too large.
            response = await gateway.post("/api/v1/imports/training-hours", content=Sender(size),
                                          headers={"content-type": "text/csv"})
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM
        body = response.json()
        assert body == {"type": "urn:spp:problem:body-too-large", "title": "Request body too large",
                        "status": 413, "detail": f"the body exceeds {LIMIT} bytes",
                        "request_id": response.headers["x-request-id"]}
        assert peak < LIMIT / 10, f"peak {peak / MIB:.1f} MiB"
        # The service had been receiving the stream, and saw it cut off: nothing complete.
        upload = service.uploads[-1]
        assert upload.content_length is None
        assert not upload.complete
        assert 0 < upload.size <= LIMIT
        assert gateway.app.state.upstreams["training"].breaker.state == "closed"
