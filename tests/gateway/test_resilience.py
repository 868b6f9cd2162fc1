"""A failed upstream costs only its part (null, named in `degraded`, status 200); a view that cannot
be computed without a service answers 503; the calls go out concurrently."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.conftest import asgi
from tests.gateway.conftest import AS_OF, refuse
from tests.gateway.test_district_views import JUNIOR, PARTNERSHIP, PRIMARY, ROTATION, TRAINING

PROBLEM = "application/problem+json"
DEAD = httpx.MockTransport(refuse)


def failing(status: int) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, json={"title": "boom"}))


class Delayed(httpx.AsyncBaseTransport):
    """Answers after `delay` seconds, like a service across the network."""

    def __init__(self, inner: httpx.AsyncBaseTransport, delay: float) -> None:
        self.inner, self.delay = inner, delay

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(self.delay)
        return await self.inner.handle_async_request(request)


async def overview(client: httpx.AsyncClient) -> httpx.Response:
    return await client.get("/api/v1/districts/110105/overview", params={"as_of": AS_OF, "academic_year": 2024})


async def test_training_down(gateway_with, chaoyang):
    async with gateway_with(training=DEAD) as client:
        response = await overview(client)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["degraded"] == ["training"]
    assert body["training"] is None
    assert body["partnership"] == PARTNERSHIP
    assert body["rotation"] == ROTATION
    assert body["balance"] == {"primary": PRIMARY, "junior": JUNIOR}


async def test_training_answering_5xx_is_degraded_too(gateway_with, chaoyang):
    async with gateway_with(training=failing(500)) as client:
        response = await overview(client)
    assert response.status_code == 200
    assert response.json()["degraded"] == ["training"]
    assert response.json()["training"] is None


async def test_rotation_down(gateway_with, chaoyang):
    async with gateway_with(rotation=DEAD) as client:
        response = await overview(client)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["degraded"] == ["rotation"]
        assert body["rotation"] is None and body["balance"] is None
        assert body["partnership"] == PARTNERSHIP
        # Training counts completion from its own staff directory: rotation down costs it nothing.
        assert body["training"] == TRAINING

        balance = await client.get("/api/v1/districts/110105/balance", params={"as_of": AS_OF})
        assert balance.status_code == 503
        assert balance.headers["content-type"] == PROBLEM
        assert balance.json()["upstream"] == "rotation"
        what_if = await client.post("/api/v1/districts/110105/balance/what-if",
                                    json={"as_of": AS_OF, "moves": [
                                        {"staff_id": chaoyang.staff["T1"]["id"], "to_school_code": "S5"}]})
        assert what_if.status_code == 503
        assert what_if.headers["content-type"] == PROBLEM


async def test_partnership_down(gateway_with, chaoyang):
    async with gateway_with(partnership=DEAD) as client:
        response = await overview(client)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["degraded"] == ["partnership"]
        assert body["district"] == {"code": "110105", "name": None}
        assert body["partnership"] is None
        # The balance is rotation's (its copy of the school registry, kept from partnership's feed).
        assert body["balance"] == {"primary": PRIMARY, "junior": JUNIOR}
        assert body["rotation"] == ROTATION
        assert body["training"]["completed"] == 3
        balance = await client.get("/api/v1/districts/110105/balance", params={"as_of": AS_OF})
        assert balance.status_code == 503
        assert balance.json()["upstream"] == "partnership"


async def test_everything_down_is_still_an_answer(gateway_with, chaoyang):
    async with gateway_with(partnership=DEAD, rotation=DEAD, training=DEAD) as client:
        response = await overview(client)
        assert response.status_code == 200
        body = response.json()
        assert body["degraded"] == ["partnership", "rotation", "training"]
        assert [body[part] for part in ("partnership", "rotation", "training", "balance")] == [None] * 4
        city = await client.get("/api/v1/city/overview", params={"as_of": AS_OF})
        assert city.status_code == 200
        assert city.json()["districts"] == [] and city.json()["degraded"] == ["partnership", "rotation", "training"]


async def test_calls_go_out_concurrently(gateway_with, chaoyang, partnership_app, rotation_app, training_app):
    # Six independent calls of 0.4 s each: concurrently ≈ 0.4 s; one after the other 6 × 0.4 = 2.4 s.
    delay = 0.4
    async with gateway_with(partnership=Delayed(asgi(partnership_app), delay),
                            rotation=Delayed(asgi(rotation_app), delay),
                            training=Delayed(asgi(training_app), delay)) as client:
        started = time.perf_counter()
        response = await overview(client)
        elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert response.json()["degraded"] == []
    assert elapsed < 1.6, elapsed
