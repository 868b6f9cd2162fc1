"""The overviews ship no lists of ids between services (issue 10): every upstream call is a GET
with scalar query parameters, and completion is counted by training where the ledger lives."""

from __future__ import annotations

import re

import httpx

from tests.conftest import asgi
from tests.gateway.conftest import AS_OF
from tests.gateway.test_district_views import TRAINING

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Recording(httpx.AsyncBaseTransport):
    """Passes calls through and records (service, method, path, query params, body) for each."""

    def __init__(self, service: str, inner: httpx.AsyncBaseTransport, calls: list) -> None:
        self.service, self.inner, self.calls = service, inner, calls

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        self.calls.append((self.service, request.method, request.url.path,
                           tuple(sorted(request.url.params.multi_items())), body))
        return await self.inner.handle_async_request(request)


def _recorded(calls: list, partnership_app, rotation_app, training_app) -> dict:
    return {name: Recording(name, asgi(app), calls)
            for name, app in (("partnership", partnership_app), ("rotation", rotation_app),
                              ("training", training_app))}


def _no_id_lists(calls: list) -> None:
    for service, method, path, params, body in calls:
        assert (method, body) == ("GET", b""), (service, path)
        assert len({key for key, _ in params}) == len(params), (service, path, params)  # no repeated keys
        assert not UUID_RE.search(path + repr(params)), (service, path, params)


async def test_the_district_overview_makes_five_scalar_calls_and_never_reads_the_school_registry(gateway_with, chaoyang, partnership_app,
                                                            rotation_app, training_app):
    calls: list = []
    async with gateway_with(**_recorded(calls, partnership_app, rotation_app, training_app)) as client:
        response = await client.get("/api/v1/districts/110105/overview", params={"as_of": AS_OF,
                                                                                   "academic_year": 2024})
    assert response.status_code == 200
    assert response.json()["training"] == TRAINING
    _no_id_lists(calls)
    assert sorted((service, path, params) for service, _, path, params, _ in calls) == [
        ("partnership", "/v1/internal/partnership-stats", (("as_of", AS_OF), ("district_code", "110105"),
                                                           ("from", "2024-09-01"), ("to", "2025-08-31"))),
        ("rotation", "/v1/internal/balance-totals", (("as_of", AS_OF), ("district_code", "110105"))),
        ("rotation", "/v1/internal/rotation-stats", (("academic_year", "2024"), ("district_code", "110105"))),
        ("training", "/v1/internal/studio-stats", (("academic_year", "2024"), ("district_code", "110105"))),
        ("training", "/v1/internal/training-completion", (("as_of", AS_OF), ("district_code", "110105"))),
    ]


async def test_the_city_overview_makes_five_scalar_calls_and_never_reads_the_school_registry(gateway_with, chaoyang, partnership_app, rotation_app,
                                                        training_app):
    calls: list = []
    async with gateway_with(**_recorded(calls, partnership_app, rotation_app, training_app)) as client:
        response = await client.get("/api/v1/city/overview", params={"as_of": AS_OF, "academic_year": 2024})
    assert response.status_code == 200
    assert [row["training"]["completed"] for row in response.json()["districts"]] == [3, 1]
    _no_id_lists(calls)
    assert sorted((service, path) for service, _, path, _, _ in calls) == [
        ("partnership", "/v1/internal/partnership-stats"), ("rotation", "/v1/internal/balance-totals"),
        ("rotation", "/v1/internal/rotation-stats"), ("training", "/v1/internal/studio-stats"),
        ("training", "/v1/internal/training-completion")]
    assert all("district_code" not in dict(params) for _, _, _, params, _ in calls)
