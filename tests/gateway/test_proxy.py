"""The gateway forwards public paths to their owner and keeps status, body and headers."""

import asyncio

import httpx

from gateway.app import create_app
from tests.conftest import fetch

PROBLEM = "application/problem+json"


async def test_partnership_through_gateway(gateway, db_engine):
    created = await gateway.post("/api/v1/districts", json={"code": "110105", "name": "朝阳区"})
    assert created.status_code == 201
    assert created.headers["location"] == "/api/v1/districts/110105"
    assert created.headers["content-type"] == "application/json"
    school = await gateway.post("/api/v1/schools", json={
        "code": "S1", "name": "北京市朝阳区实验小学", "district_code": "110105", "stage": "primary",
        "locality": "urban"})
    assert school.status_code == 201
    listed = await gateway.get("/api/v1/schools", params={"district_code": "110105", "limit": 1})
    assert listed.status_code == 200
    assert listed.json()["items"][0]["name"] == "北京市朝阳区实验小学"
    duplicate = await gateway.post("/api/v1/districts", json={"code": "110105", "name": "朝阳区"})
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"] == PROBLEM
    assert await fetch(db_engine, "select code from partnership.districts") == [{"code": "110105"}]


async def test_gateway_verifies_token_before_forwarding(gateway):
    response = await gateway.get("/api/v1/schools", headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM


async def test_unknown_and_internal_paths_are_404(gateway):
    for path in ("/api/v1/nothing", "/api/v1/internal/partnership-stats"):
        response = await gateway.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM


async def test_upstream_down_is_503_problem(settings, token):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    dead = httpx.MockTransport(refuse)
    app = create_app(settings, transports={"partnership": dead, "rotation": dead, "training": dead})
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw",
                                     headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"}) as client:
            response = await client.get("/api/v1/schools")
            assert response.status_code == 503
            assert response.headers["content-type"] == PROBLEM
            assert response.json()["upstream"] == "partnership"
            # a GET is tried twice (one jittered retry), but a call counts once against the breaker
            # (threshold 3): the third failed call opens it, the fourth is short-circuited
            for _ in range(2):
                again = await client.get("/api/v1/schools")
                assert again.json()["detail"] == "the partnership service is unavailable (ConnectError)"
            shorted = await client.get("/api/v1/schools")
            assert shorted.status_code == 503
            assert shorted.json()["detail"] == "the partnership service is unavailable (circuit open)"
            ready = await client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["upstreams"] == {"partnership": "circuit_open", "rotation": "down",
                                                 "training": "down"}


async def test_merged_openapi_document(gateway):
    response = await gateway.get("/api/v1/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/api/v1/districts", "/api/v1/schools/{code}", "/api/v1/pairings/{pairing_id}/activate",
                 "/api/v1/pairings/{pairing_id}/activities", "/api/v1/activities"):
        assert path in paths
    assert not any("/internal" in p for p in paths)
    assert "SchoolRead" in response.json()["components"]["schemas"]
    docs = await gateway.get("/docs")
    assert docs.status_code == 200
    assert "/api/v1/openapi.json" in docs.text


async def test_change_feed_by_service(gateway):
    await gateway.post("/api/v1/districts", json={"code": "110105", "name": "朝阳区"})
    for _ in range(200):  # a transaction elsewhere on the server may hold the feed back briefly
        page = await gateway.get("/api/v1/changes", params={"service": "partnership", "limit": 10})
        assert page.status_code == 200
        if page.json()["items"]:
            break
        await asyncio.sleep(0.05)
    assert [(c["entity"], c["key"]) for c in page.json()["items"]] == [("district", "110105")]
    missing = await gateway.get("/api/v1/changes")
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "query.service"


async def test_imports_route_by_kind_and_id(gateway):
    await gateway.post("/api/v1/districts", json={"code": "110105", "name": "朝阳区"})
    body = "学校代码,学校名称,区县代码,学段,城乡类别\nS1,某校,110105,小学,城区\n".encode("gb18030")
    created = await gateway.post("/api/v1/imports/schools", content=body, headers={"content-type": "text/csv"})
    assert created.status_code == 200
    assert created.json()["inserted"] == 1
    report = await gateway.get(created.headers["location"])
    assert (report.status_code, report.json()["status"]) == (200, "completed")
    assert (await gateway.post("/api/v1/imports/bogus", content=b"x")).status_code == 404


async def test_import_bodies_may_exceed_the_single_resource_limit(gateway):
    big = b"code,name\n" + b"X," + b"x" * (1024 * 1024 + 100) + b"\n"
    imported = await gateway.post("/api/v1/imports/schools", params={"dry_run": "true"}, content=big,
                                  headers={"content-type": "text/csv"})
    # the body was accepted and read (not 413); its one giant field is refused as a bad file
    assert imported.status_code == 422
    assert imported.json()["type"] == "urn:spp:problem:bad-file"
    single = await gateway.post("/api/v1/schools", content=big, headers={"content-type": "application/json"})
    assert single.status_code == 413


async def test_etag_if_match_and_304_pass_through(gateway):
    await gateway.post("/api/v1/districts", json={"code": "110105", "name": "朝阳区"})
    await gateway.post("/api/v1/schools", json={"code": "S1", "name": "某校", "district_code": "110105",
                                                "stage": "primary", "locality": "urban"})
    first = await gateway.get("/api/v1/schools/S1")
    assert first.headers["etag"] == '"v1"'
    assert (await gateway.get("/api/v1/schools/S1", headers={"If-None-Match": '"v1"'})).status_code == 304
    changed = await gateway.patch("/api/v1/schools/S1", json={"name": "新校名"}, headers={"If-Match": '"v1"'})
    assert (changed.status_code, changed.headers["etag"]) == (200, '"v2"')
    stale = await gateway.patch("/api/v1/schools/S1", json={"name": "旧"}, headers={"If-Match": '"v1"'})
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
