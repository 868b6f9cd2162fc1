"""Idempotency-Key replays and the per-token rate limit at the gateway."""

import asyncio

import httpx

from gateway.app import create_app
from tests.conftest import asgi, fetch

DISTRICT = {"code": "110105", "name": "朝阳区"}


async def test_replay_returns_the_stored_response(gateway, db_engine):
    headers = {"Idempotency-Key": "k-1"}
    first = await gateway.post("/api/v1/districts", json=DISTRICT, headers=headers)
    assert first.status_code == 201
    replay = await gateway.post("/api/v1/districts", json=DISTRICT, headers=headers)
    assert replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.headers["location"] == "/api/v1/districts/110105"
    assert replay.headers["idempotent-replayed"] == "true"
    assert await fetch(db_engine, "select count(*) as n from partnership.districts") == [{"n": 1}]
    # without the key, the same body is a second attempt and meets the duplicate rule
    assert (await gateway.post("/api/v1/districts", json=DISTRICT)).status_code == 409


async def test_same_key_other_body_is_422(gateway, db_engine):
    await gateway.post("/api/v1/districts", json=DISTRICT, headers={"Idempotency-Key": "k-2"})
    other = await gateway.post("/api/v1/districts", json={"code": "110119", "name": "延庆区"},
                               headers={"Idempotency-Key": "k-2"})
    assert other.status_code == 422
    assert other.json()["type"] == "urn:spp:problem:idempotency-key-reused"
    assert await fetch(db_engine, "select code from partnership.districts") == [{"code": "110105"}]


async def test_keys_belong_to_their_caller(gateway, token):
    mine = await gateway.post("/api/v1/districts", json=DISTRICT, headers={"Idempotency-Key": "shared"})
    assert mine.status_code == 201
    someone_else = {"Authorization": f"Bearer {token(sub='other-admin')}", "Idempotency-Key": "shared"}
    theirs = await gateway.post("/api/v1/districts", json=DISTRICT, headers=someone_else)
    assert theirs.status_code == 409  # ran for real: their key is their own


async def test_concurrent_replays_run_once(gateway, db_engine):
    headers = {"Idempotency-Key": "k-race"}
    responses = await asyncio.gather(*(gateway.post("/api/v1/districts", json=DISTRICT, headers=headers)
                                       for _ in range(10)))
    assert [r.status_code for r in responses] == [201] * 10
    assert len({r.text for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 9
    assert await fetch(db_engine, "select count(*) as n from partnership.districts") == [{"n": 1}]
    stored = await fetch(db_engine, "select status from gateway.idempotency_keys")
    assert stored == [{"status": 201}]


async def test_failed_upstream_releases_the_key(settings, token, partnership_app, db_engine):
    calls = {"n": 0}
    real = asgi(partnership_app)

    async def flaky(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ConnectError("refused", request=request)
        return await real.handle_async_request(request)

    app = create_app(settings, transports={"partnership": httpx.MockTransport(flaky)})
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=asgi(app), base_url="http://gw",
                                     headers={"Authorization": f"Bearer {token()}",
                                              "Idempotency-Key": "k-retry"}) as client:
            assert (await client.post("/api/v1/districts", json=DISTRICT)).status_code == 503
            assert await fetch(db_engine, "select count(*) as n from gateway.idempotency_keys") == [{"n": 0}]
            retried = await client.post("/api/v1/districts", json=DISTRICT)
            assert retried.status_code == 201
            assert "idempotent-replayed" not in retried.headers


async def test_rate_limit_429_with_retry_after(settings, token, partnership_app):
    limited = settings.model_copy(update={"rate_limit_per_minute": 3})
    app = create_app(limited, transports={"partnership": asgi(partnership_app)})
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=asgi(app), base_url="http://gw",
                                     headers={"Authorization": f"Bearer {token()}"}) as client:
            statuses = [(await client.get("/api/v1/districts")).status_code for _ in range(4)]
            assert statuses == [200, 200, 200, 429]
            blocked = await client.get("/api/v1/districts")
            assert blocked.headers["content-type"] == "application/problem+json"
            # 3 in any minute: the first of the three leaves the window a minute after it came
            assert blocked.headers["retry-after"] in ("59", "60")
            other = await client.get("/api/v1/districts", headers={"Authorization": f"Bearer {token(sub='b')}"})
            assert other.status_code == 200  # a budget per token
            assert (await client.get("/livez")).status_code == 200

