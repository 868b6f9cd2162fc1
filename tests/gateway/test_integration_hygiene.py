"""Idempotency-Key through the gateway (recorded by the owning service, in the write's transaction)
and the per-token rate limit at the gateway."""

import asyncio

import httpx

from gateway.app import create_app
from tests.conftest import asgi, fetch

DISTRICT = {"code": "110105", "name": "朝阳区"}
KEYS = "select subject, key, status from partnership.idempotency_keys order by key"


class LosesAnswers(httpx.AsyncBaseTransport):
    """Reaches the real service, which commits and answers; then the connection drops before the
    gateway reads the answer, `lose` times."""

    def __init__(self, app) -> None:
        self.real = asgi(app)
        self.lose = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.real.handle_async_request(request)
        if self.lose:
            self.lose -= 1
            await response.aread()
            raise httpx.ReadError("connection reset after the service answered", request=request)
        return response


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
    assert await fetch(db_engine, KEYS) == [{"subject": "tester", "key": "k-2", "status": 201}]


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
    assert await fetch(db_engine, KEYS) == [{"subject": "tester", "key": "k-race", "status": 201}]
    assert await fetch(db_engine, "select key, op from partnership.changes") == [{"key": "110105", "op": "create"}]


async def test_retry_after_a_lost_response_returns_the_committed_result(gateway_with, partnership_app,
                                                                       db_engine):
    lossy = LosesAnswers(partnership_app)
    async with gateway_with(partnership=lossy) as client:
        assert (await client.post("/api/v1/districts", json=DISTRICT)).status_code == 201
        school = {"code": "S1", "name": "北京市朝阳区实验小学", "district_code": "110105", "stage": "primary",
                  "locality": "urban", "primary_enrollment": 400, "junior_enrollment": 0, "senior_enrollment": 0}
        lossy.lose = 1
        lost = await client.post("/api/v1/schools", json=school, headers={"Idempotency-Key": "create-S1"})
        assert lost.status_code == 503  # the caller never saw the 201 …
        assert await fetch(db_engine, "select code from partnership.schools") == [{"code": "S1"}]  # … it committed
        retried = await client.post("/api/v1/schools", json=school, headers={"Idempotency-Key": "create-S1"})
        assert retried.status_code == 201
        assert retried.headers["location"] == "/api/v1/schools/S1"
        assert retried.headers["idempotent-replayed"] == "true"
        assert retried.json() == (await client.get("/api/v1/schools/S1")).json()

        partner = {**school, "code": "S2", "name": "北京市朝阳区乡村小学", "locality": "rural"}
        assert (await client.post("/api/v1/schools", json=partner)).status_code == 201
        pairing = await client.post("/api/v1/pairings", json={
            "lead_school_code": "S1", "partner_school_code": "S2", "program": "城乡学校手拉手",
            "start_date": "2024-09-01", "end_date": "2027-08-31"})
        activate = f"/api/v1/pairings/{pairing.json()['id']}/activate"
        lossy.lose = 1
        assert (await client.post(activate, headers={"Idempotency-Key": "activate-P1"})).status_code == 503
        again = await client.post(activate, headers={"Idempotency-Key": "activate-P1"})
        # the committed transition again, not 409 illegal-transition (active → active)
        assert (again.status_code, again.headers["etag"], again.json()["status"]) == (200, '"v2"', "active")
        assert again.headers["idempotent-replayed"] == "true"
    assert await fetch(db_engine, "select count(*) as n from partnership.schools") == [{"n": 2}]
    assert await fetch(db_engine, "select key, op from partnership.changes where entity <> 'district' "
                                  "order by seq") == [
        {"key": "S1", "op": "create"}, {"key": "S2", "op": "create"}, {"key": pairing.json()["id"], "op": "create"},
        {"key": pairing.json()["id"], "op": "state"}]
    assert await fetch(db_engine, KEYS) == [{"subject": "tester", "key": "activate-P1", "status": 200},
                                            {"subject": "tester", "key": "create-S1", "status": 201}]


async def test_unreachable_service_records_nothing_and_a_retry_runs(settings, token, partnership_app, db_engine):
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
            assert await fetch(db_engine, KEYS) == []
            retried = await client.post("/api/v1/districts", json=DISTRICT)
            assert retried.status_code == 201
            assert "idempotent-replayed" not in retried.headers
    assert await fetch(db_engine, KEYS) == [{"subject": "tester", "key": "k-retry", "status": 201}]


async def test_rate_limit_429_with_retry_after(settings, token, partnership_app):
    limited = settings.model_copy(update={"rate_limit_per_minute": 3})
    app = create_app(limited, transports={"partnership": asgi(partnership_app)})
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=asgi(app), base_url="http://gw",
                                     headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"}) as client:
            statuses = [(await client.get("/api/v1/districts")).status_code for _ in range(4)]
            assert statuses == [200, 200, 200, 429]
            blocked = await client.get("/api/v1/districts")
            assert blocked.headers["content-type"] == "application/problem+json"
            # 3 in any minute: the first of the three leaves the window a minute after it came
            assert blocked.headers["retry-after"] in ("59", "60")
            other = await client.get("/api/v1/districts", headers={"Authorization": f"Bearer {token(sub='b')}"})
            assert other.status_code == 200  # a budget per token
            assert (await client.get("/livez")).status_code == 200

