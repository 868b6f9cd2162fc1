"""What browsers need from the gateway (issue 11 item 1): CORS, gzip over 1 KB, HEAD on every GET."""

from __future__ import annotations

import gzip
import json
from contextlib import asynccontextmanager

import httpx
import pytest

from gateway.app import create_app
from tests.conftest import asgi
from tests.feed import synced
from tests.gateway.conftest import build_chaoyang
from tests.partnership import factories as f

APP_ORIGIN = "https://jiaoyu.example.gov.cn"
OTHER_ORIGIN = "https://evil.example.com"
CORS_ORIGINS = f"{APP_ORIGIN}, https://admin.example.gov.cn"


@pytest.fixture
def gateway_with_settings(settings, partnership_app, rotation_app, training_app, token):
    @asynccontextmanager
    async def make(**changes):
        app = create_app(settings.model_copy(update=changes),
                         transports={"partnership": asgi(partnership_app), "rotation": asgi(rotation_app),
                                     "training": asgi(training_app)})
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=asgi(app), base_url="http://gateway", timeout=30,
                                         headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"}) as client:
                yield client
    return make


async def _schools(partnership, n: int) -> None:
    await f.district(partnership)
    for i in range(n):
        await f.school(partnership, f"S{i:02d}", name=f"北京市朝阳区第{i}实验小学")


class TestCORS:
    async def test_preflight_from_an_allowed_origin(self, gateway_with_settings):
        async with gateway_with_settings(cors_origins=CORS_ORIGINS) as gateway:
            response = await gateway.options("/api/v1/schools/S1", headers={
                "Authorization": "", "Origin": APP_ORIGIN, "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "authorization, if-match, idempotency-key, content-type"})
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == APP_ORIGIN
        assert response.headers["access-control-allow-methods"] == "GET, HEAD, POST, PUT, PATCH, DELETE"
        assert response.headers["access-control-allow-headers"] == (
            "Accept, Accept-Language, Authorization, Content-Language, Content-Type, Idempotency-Key, "
            "If-Match, If-None-Match, X-Request-Id")
        assert response.headers["access-control-max-age"] == "600"
        assert "access-control-allow-credentials" not in response.headers

    async def test_simple_request_exposes_the_headers_a_client_acts_on(self, gateway_with_settings, partnership):
        await _schools(partnership, 1)
        async with gateway_with_settings(cors_origins=CORS_ORIGINS) as gateway:
            response = await gateway.get("/api/v1/schools/S00", headers={"Origin": APP_ORIGIN})
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == APP_ORIGIN
        assert response.headers["access-control-expose-headers"] == (
            "ETag, Location, X-Request-Id, Retry-After, Idempotent-Replayed, Content-Disposition")
        assert response.headers["etag"] == '"v1"'
        assert "Origin" in response.headers["vary"]

    async def test_a_disallowed_origin_gets_no_cors_headers(self, gateway_with_settings, partnership):
        await _schools(partnership, 1)
        async with gateway_with_settings(cors_origins=CORS_ORIGINS) as gateway:
            preflight = await gateway.options("/api/v1/schools", headers={
                "Origin": OTHER_ORIGIN, "Access-Control-Request-Method": "GET"})
            simple = await gateway.get("/api/v1/schools/S00", headers={"Origin": OTHER_ORIGIN})
        assert preflight.status_code == 400
        assert preflight.headers["content-type"] == "application/problem+json"
        assert preflight.json() == {"type": "urn:spp:problem:cors-refused", "title": "CORS preflight refused",
                                    "status": 400, "detail": "Disallowed CORS origin"}
        assert [h for h in preflight.headers if h.startswith("access-control-")] == []
        assert simple.status_code == 200
        assert [h for h in simple.headers if h.startswith("access-control-")] == []

    async def test_empty_setting_means_off(self, gateway):
        response = await gateway.options("/api/v1/schools", headers={
            "Origin": APP_ORIGIN, "Access-Control-Request-Method": "GET"})
        assert response.status_code == 405
        assert [h for h in response.headers if h.startswith("access-control-")] == []


async def _raw(client: httpx.AsyncClient, path: str, **headers) -> tuple[httpx.Response, bytes]:
    async with client.stream("GET", path, headers=headers) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    return response, raw


class TestGzip:
    async def test_only_over_1_kb_and_only_when_asked(self, gateway, partnership):
        await _schools(partnership, 12)
        big, raw = await _raw(gateway, "/api/v1/schools", **{"Accept-Encoding": "gzip"})
        assert big.status_code == 200
        assert big.headers["content-encoding"] == "gzip"
        assert big.headers["vary"] == "Accept-Encoding"
        plain = gzip.decompress(raw)
        assert len(plain) > 1024
        assert [s["code"] for s in json.loads(plain)["items"]] == [f"S{i:02d}" for i in range(12)]
        assert int(big.headers["content-length"]) == len(raw) < len(plain)

        identity, raw = await _raw(gateway, "/api/v1/schools", **{"Accept-Encoding": "identity"})
        assert "content-encoding" not in identity.headers
        assert raw == plain

        small, raw = await _raw(gateway, "/api/v1/schools/S00", **{"Accept-Encoding": "gzip"})
        assert len(raw) < 1024
        assert "content-encoding" not in small.headers
        assert json.loads(raw)["code"] == "S00"

    async def test_exports_and_304_still_work(self, gateway, partnership):
        await _schools(partnership, 30)
        csv_response, raw = await _raw(gateway, "/api/v1/schools?format=csv", **{"Accept-Encoding": "gzip"})
        assert csv_response.status_code == 200
        assert csv_response.headers["content-encoding"] == "gzip"
        assert csv_response.headers["content-disposition"] == 'attachment; filename="schools.csv"'
        lines = gzip.decompress(raw).decode("utf-8-sig").splitlines()
        assert len(lines) == 31 and lines[1].startswith("S00,北京市朝阳区第0实验小学,110105,")

        xlsx, raw = await _raw(gateway, "/api/v1/schools?format=xlsx", **{"Accept-Encoding": "gzip"})
        assert xlsx.status_code == 200
        assert "content-encoding" not in xlsx.headers  # a zip already
        assert raw[:2] == b"PK"

        not_modified, raw = await _raw(gateway, "/api/v1/schools/S00",
                                       **{"Accept-Encoding": "gzip", "If-None-Match": '"v1"'})
        assert (not_modified.status_code, raw) == (304, b"")
        assert not_modified.headers["etag"] == '"v1"'
        assert "content-encoding" not in not_modified.headers


class TestHead:
    async def _same_as_get(self, gateway, path: str, **headers) -> httpx.Response:
        got = await gateway.get(path, headers={"Accept-Encoding": "identity", **headers})
        head = await gateway.head(path, headers={"Accept-Encoding": "identity", **headers})
        assert (head.status_code, got.status_code) == (200, 200)
        assert head.content == b""
        ignored = {"x-request-id"}  # one per request
        assert {k: v for k, v in head.headers.items() if k not in ignored} == \
            {k: v for k, v in got.headers.items() if k not in ignored}
        return head

    async def test_head_on_a_list_a_resource_and_a_view(self, gateway, partnership, rotation, training, db_engine):
        await build_chaoyang(partnership, rotation, training)
        # The overview counts staff from training's directory: let it catch up first, or the GET
        # and the HEAD may see different figures.
        await synced(db_engine)
        listed = await self._same_as_get(gateway, "/api/v1/schools?district_code=110105")
        assert listed.headers["content-type"] == "application/json"
        assert int(listed.headers["content-length"]) > 0
        single = await self._same_as_get(gateway, "/api/v1/schools/S1")
        assert single.headers["etag"] == '"v1"'
        view = await self._same_as_get(gateway, "/api/v1/districts/110105/overview?as_of=2025-03-01&academic_year=2024")
        assert view.headers["content-type"] == "application/json"

    async def test_head_keeps_the_gets_compression_and_404(self, gateway, partnership):
        await _schools(partnership, 12)
        got = await gateway.get("/api/v1/schools", headers={"Accept-Encoding": "gzip"})
        head = await gateway.head("/api/v1/schools", headers={"Accept-Encoding": "gzip"})
        assert (head.status_code, head.content) == (200, b"")
        assert head.headers["content-encoding"] == got.headers["content-encoding"] == "gzip"
        assert head.headers["content-length"] == got.headers["content-length"]
        missing = await gateway.head("/api/v1/schools/NOPE")
        assert (missing.status_code, missing.content) == (404, b"")
        assert missing.headers["content-type"] == "application/problem+json"
