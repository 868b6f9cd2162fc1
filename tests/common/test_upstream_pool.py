"""The upstream client over a real loopback socket, with either connection pool under its httpx API:
a refused connection, a silent service and a working one are told apart the same way, so the
breaker and the one retry of a read do not depend on which pool is configured."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date

import httpx
import pytest

from services.common.errors import UpstreamUnavailable
from services.common.middleware import Metrics
from services.common.upstream import CircuitBreaker, Upstream, plain_query

POOLS = ("aiohttp", "httpx")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def server(delay: float) -> AsyncIterator[tuple[str, list[int]]]:
    """Answers every request with a small JSON body after `delay` s; `seen` holds, for each
    request, the number of the connection it came on."""
    seen: list[int] = []
    connections = iter(range(1, 1000))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = next(connections)
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                seen.append(number)
                await asyncio.sleep(delay)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n"
                             b'{"ok":true}')
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    listening = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        listening.close()


def upstream(url: str, pool: str, *, timeout: float = 2.0) -> Upstream:
    return Upstream("partnership", url, timeout=timeout, pool=pool,
                    breaker=CircuitBreaker(failures=2, cooldown=30.0))


@pytest.mark.parametrize("pool", POOLS)
async def test_a_refused_connection_is_a_connect_error_and_a_read_is_tried_twice(pool):
    metrics = Metrics("gateway")
    client = Upstream("partnership", f"http://127.0.0.1:{closed_port()}", timeout=2.0, pool=pool, metrics=metrics,
                      breaker=CircuitBreaker(failures=1, cooldown=30.0))
    try:
        with pytest.raises(UpstreamUnavailable) as raised:
            await client.send("GET", "/v1/schools")
        assert raised.value.detail == "the partnership service is unavailable (ConnectError)"
        assert client.breaker.state == "open"  # one failed call
        # two attempts: the read and its one retry, both transport errors (not timeouts)
        calls = {outcome: metrics.registry.get_sample_value("spp_upstream_requests_total", {
            "process": "gateway", "upstream": "partnership", "outcome": outcome}) for outcome in ("error", "timeout")}
        assert calls == {"error": 2.0, "timeout": None}
    finally:
        await client.aclose()


@pytest.mark.parametrize("pool", POOLS)
async def test_a_silent_service_times_out_once_without_a_retry(pool):
    async with server(delay=1.0) as (url, seen):
        client = upstream(url, pool, timeout=0.3)
        try:
            with pytest.raises(UpstreamUnavailable) as raised:
                await client.send("GET", "/v1/schools")
            assert raised.value.detail == "the partnership service is unavailable (timed out)"
            assert (client.breaker.state, len(seen)) == ("closed", 1)
        finally:
            await client.aclose()


@pytest.mark.parametrize("pool", POOLS)
async def test_calls_reuse_one_kept_alive_connection(pool):
    async with server(delay=0.0) as (url, seen):
        client = upstream(url, pool)
        try:
            for _ in range(3):
                assert await client.get_json("/v1/schools") == {"ok": True}
            assert seen == [1, 1, 1]
        finally:
            await client.aclose()


@pytest.mark.parametrize("pool", POOLS)
async def test_a_cookie_from_one_answer_never_goes_out_with_the_next_call(pool):
    heads: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                heads.append(head.lower())
                writer.write(b"HTTP/1.1 200 OK\r\nset-cookie: session=caller-1; Path=/\r\n"
                             b"content-type: application/json\r\ncontent-length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    listening = await asyncio.start_server(handle, "127.0.0.1", 0)
    client = upstream(f"http://127.0.0.1:{listening.sockets[0].getsockname()[1]}", pool)
    try:
        for _ in range(2):
            assert (await client.send("GET", "/v1/schools")).status_code == 200
        assert len(heads) == 2
        assert not any(b"cookie:" in head for head in heads)
        assert len(client.client.cookies) == 0
    finally:
        await client.aclose()
        listening.close()


@pytest.mark.parametrize("params", [
    {"as_of": date(2025, 3, 1), "from": "2024-09-01", "to": "2025-08-31", "district_code": "110105"},
    {"q": "张 伟/1+2&x=y~*'()!%", "limit": 50, "hours": 1.5, "empty": ""},
    {}, None,
    {"district_code": None}, {"flag": True}, {"ids": ["a", "b"]},  # httpx's own rules: not the short way
])
async def test_a_call_with_parameters_sends_the_url_httpx_would(params):
    """Figure calls build their URL in one parse (`plain_query`); the URL that reaches the service
    is the one httpx's client would have built, for Chinese text, reserved characters and every
    value type, and parameters the short way does not take still go through httpx."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    upstream = Upstream("partnership", "http://partnership:8001/base", timeout=1.0,
                        transport=httpx.MockTransport(answer))
    await upstream.send("GET", "/v1/internal/partnership-stats", params=params, headers={"X-Request-ID": "r-1"})
    await upstream.aclose()
    expected = httpx.AsyncClient(base_url="http://partnership:8001/base").build_request(
        "GET", "/v1/internal/partnership-stats", params=params)
    assert str(seen[0].url) == str(expected.url)
    assert seen[0].headers["x-request-id"] == "r-1"
    assert (plain_query(params) is None) == (params is not None and any(
        value is None or isinstance(value, (bool, list)) for value in params.values()))


@pytest.mark.parametrize("path", ["http://partnership:8001/base/v1/schools?limit=50&district_code=110105",
                                  "/v1/schools?limit=50&district_code=110105",
                                  "/v1/internal/partnership-stats"])
async def test_a_path_with_its_query_string_or_plain_parameters_skips_the_clients_url_building(path, monkeypatch):
    """The proxy forwards an absolute URL with the caller's query string; figure calls send plain
    parameters. Neither goes through httpx's build_request (three or four URL parses)."""
    seen: list[httpx.Request] = []
    upstream = Upstream("partnership", "http://partnership:8001/base", timeout=1.0,
                        transport=httpx.MockTransport(lambda request: seen.append(request) or httpx.Response(200)))

    def refuse(*args, **kwargs):
        raise AssertionError("build_request was used")

    monkeypatch.setattr(upstream.client, "build_request", refuse)
    params = None if "?" in path else {"as_of": date(2025, 3, 1), "district_code": "110105"}
    await upstream.send("GET", path, params=params)
    await upstream.aclose()
    expected = httpx.AsyncClient(base_url="http://partnership:8001/base").build_request("GET", path, params=params)
    assert str(seen[0].url) == str(expected.url)
