"""The gateway's rate limit counted in a storage that several gateway replicas share (issue 12 item 4)."""

import time
from contextlib import AsyncExitStack

import httpx
import pytest

from gateway.app import create_app
from tests.conftest import asgi

PROBLEM = {"type": "urn:spp:problem:rate-limited", "title": "Too many requests", "status": 429,
           "detail": "rate limit of 3 requests a minute exceeded"}


async def _gateways(stack: AsyncExitStack, settings, partnership_app, token, *storages: str) -> list[httpx.AsyncClient]:
    """One gateway app per storage URI, each with its own middleware, as separate replicas have."""
    clients = []
    # One token for every client: the budget is per caller (the Authorization header), and two tokens
    # minted in different seconds would be two callers.
    bearer = token()
    for storage in storages:
        app = create_app(settings.model_copy(update={"rate_limit_per_minute": 3, "rate_limit_storage": storage}),
                         transports={"partnership": asgi(partnership_app)})
        await stack.enter_async_context(app.router.lifespan_context(app))
        clients.append(await stack.enter_async_context(httpx.AsyncClient(
            transport=asgi(app), base_url="http://gw", headers={"Authorization": f"Bearer {bearer}", "Accept-Language": "en"})))
    return clients


async def test_two_gateways_sharing_one_storage_enforce_one_budget(settings, token, partnership_app):
    shared = f"memory://two-replicas-{time.monotonic_ns()}"
    async with AsyncExitStack() as stack:
        first, second, alone = await _gateways(stack, settings, partnership_app, token,
                                               shared, shared, f"memory://alone-{time.monotonic_ns()}")
        spent = [(await client.get("/api/v1/districts")).status_code for client in (first, second, first)]
        assert spent == [200, 200, 200]
        for client in (second, first):  # the budget of 3 is spent across both replicas
            refused = await client.get("/api/v1/districts")
            assert refused.status_code == 429
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.headers["retry-after"] in ("59", "60")
            assert {k: v for k, v in refused.json().items() if k != "request_id"} == PROBLEM
        other = await second.get("/api/v1/districts", headers={"Authorization": f"Bearer {token(sub='other')}"})
        assert other.status_code == 200  # a budget per caller
        assert (await first.get("/readyz")).status_code == 200  # probes are never limited
        # a gateway counting in another storage has its own budget for the same caller
        assert [(await alone.get("/api/v1/districts")).status_code for _ in range(4)] == [200, 200, 200, 429]


async def test_an_unreachable_storage_does_not_take_the_gateway_off_the_air(settings, token, partnership_app):
    # Nothing listens on port 1: every count fails, and the requests are served unlimited.
    async with AsyncExitStack() as stack:
        (client,) = await _gateways(stack, settings, partnership_app, token, "redis://127.0.0.1:1/0")
        assert [(await client.get("/api/v1/districts")).status_code for _ in range(4)] == [200, 200, 200, 200]


async def test_an_unknown_storage_scheme_stops_the_gateway_at_start(settings):
    app = create_app(settings.model_copy(update={"rate_limit_per_minute": 3, "rate_limit_storage": "bogus://x"}))
    with pytest.raises(ValueError, match="unknown storage scheme 'async\\+bogus'"):
        # the first ASGI message (lifespan startup under uvicorn) builds the middleware
        await app({"type": "lifespan"}, None, None)
