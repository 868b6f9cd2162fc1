"""Idempotency-Key decided by the service that writes (services/common/idempotency.py): reached
directly, through the gateway, concurrently, after an error, after expiry, and while in flight."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import text

from tests.conftest import asgi, fetch
from tests.partnership import factories as f
from tests.rotation.factories import staff_body

DISTRICT = {"code": "110105", "name": "朝阳区"}
KEYS = "select subject, key, status from partnership.idempotency_keys order by key"
PROBLEM = "application/problem+json"


async def test_a_service_reached_directly_honours_the_key(partnership, db_engine):
    first = await partnership.post("/v1/districts", json=DISTRICT, headers={"Idempotency-Key": "d-1"})
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    replay = await partnership.post("/v1/districts", json=DISTRICT, headers={"Idempotency-Key": "d-1"})
    assert (replay.status_code, replay.content) == (201, first.content)
    assert replay.headers["location"] == "/api/v1/districts/110105"
    assert replay.headers["content-type"] == "application/json"
    assert replay.headers["idempotent-replayed"] == "true"
    assert await fetch(db_engine, "select code from partnership.districts") == [{"code": "110105"}]
    assert await fetch(db_engine, "select key, op from partnership.changes") == [{"key": "110105", "op": "create"}]
    assert await fetch(db_engine, KEYS) == [{"subject": "tester", "key": "d-1", "status": 201}]
    stored = await fetch(db_engine, "select headers, body from partnership.idempotency_keys")
    assert stored == [{"headers": {"content-type": "application/json", "location": "/api/v1/districts/110105"},
                       "body": first.content}]


async def test_one_key_through_the_gateway_and_directly_is_one_write(gateway, partnership, db_engine):
    via_gateway = await gateway.post("/api/v1/districts", json=DISTRICT, headers={"Idempotency-Key": "both"})
    assert via_gateway.status_code == 201
    direct = await partnership.post("/v1/districts", json=DISTRICT, headers={"Idempotency-Key": "both"})
    assert (direct.status_code, direct.json(), direct.headers["idempotent-replayed"]) == (
        201, via_gateway.json(), "true")
    assert await fetch(db_engine, "select count(*) as n from partnership.districts") == [{"n": 1}]


async def test_concurrent_duplicates_make_one_write_and_identical_answers(partnership, rotation, db_engine):
    await f.district(partnership)
    await f.school(partnership, "11010501")
    body = staff_body(staff_no="T000777")
    headers = {"Idempotency-Key": "staff-T000777"}
    responses = await asyncio.gather(*(rotation.post("/v1/staff", json=body, headers=headers) for _ in range(10)))
    assert [r.status_code for r in responses] == [201] * 10
    assert len({r.content for r in responses}) == 1
    assert len({r.headers["location"] for r in responses}) == 1
    assert sorted(r.headers.get("idempotent-replayed", "no") for r in responses) == ["no"] + ["true"] * 9
    staff_id = responses[0].json()["id"]
    assert await fetch(db_engine, "select id::text as id, staff_no from rotation.staff") == [
        {"id": staff_id, "staff_no": "T000777"}]
    assert await fetch(db_engine, "select key, op from rotation.changes") == [{"key": "T000777", "op": "create"}]
    assert await fetch(db_engine, "select key, status from rotation.idempotency_keys") == [
        {"key": "staff-T000777", "status": 201}]


async def test_the_same_key_for_another_request_is_422(partnership, db_engine):
    assert (await partnership.post("/v1/districts", json=DISTRICT, headers={"Idempotency-Key": "k"})).status_code == 201
    for method_path, body in ((("POST", "/v1/districts"), {"code": "110119", "name": "延庆区"}),
                              (("POST", "/v1/schools"), DISTRICT)):
        reused = await partnership.request(*method_path, json=body, headers={"Idempotency-Key": "k"})
        assert reused.status_code == 422
        assert reused.headers["content-type"] == PROBLEM
        assert reused.json()["type"] == "urn:spp:problem:idempotency-key-reused"
    assert await fetch(db_engine, "select code from partnership.districts") == [{"code": "110105"}]
    assert await fetch(db_engine, KEYS) == [{"subject": "tester", "key": "k", "status": 201}]


async def test_an_error_rolls_the_key_back_with_the_write(partnership, db_engine):
    school = {"code": "S1", "name": "北京市朝阳区实验小学", "district_code": "110105", "stage": "primary",
              "locality": "urban"}
    refused = await partnership.post("/v1/schools", json=school, headers={"Idempotency-Key": "s-1"})
    assert refused.status_code == 422  # unknown district
    assert await fetch(db_engine, KEYS) == []
    await f.district(partnership)
    retried = await partnership.post("/v1/schools", json=school, headers={"Idempotency-Key": "s-1"})
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    assert await fetch(db_engine, KEYS) == [{"subject": "tester", "key": "s-1", "status": 201}]


async def test_an_expired_key_is_a_new_key(partnership, db_engine):
    assert (await partnership.post("/v1/districts", json=DISTRICT, headers={"Idempotency-Key": "old"})
            ).status_code == 201
    async with db_engine.begin() as conn:
        await conn.execute(text("update partnership.idempotency_keys set created_at = now() - interval '25 hours'"))
    fresh = await partnership.post("/v1/districts", json={"code": "110119", "name": "延庆区"},
                                   headers={"Idempotency-Key": "old"})
    assert fresh.status_code == 201
    assert "idempotent-replayed" not in fresh.headers
    assert await fetch(db_engine, "select code from partnership.districts order by code") == [
        {"code": "110105"}, {"code": "110119"}]
    rows = await fetch(db_engine, "select key, status, created_at > now() - interval '1 minute' as renewed "
                                  "from partnership.idempotency_keys")
    assert rows == [{"key": "old", "status": 201, "renewed": True}]


async def test_a_duplicate_waits_a_bounded_time_then_409(settings, token, db_engine):
    from services.partnership.app import create_app

    app = create_app(settings.model_copy(update={"idempotency_wait_seconds": 0.3}))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=asgi(app), base_url="http://partnership",
            headers={"Authorization": f"Bearer {token()}", "Idempotency-Key": "held"}) as client:
        async with db_engine.connect() as first:  # another request holding the key, not yet committed
            await first.execute(text("insert into partnership.idempotency_keys (subject, key, fingerprint) "
                                     "values ('tester', 'held', 'x')"))
            waited = await client.post("/v1/districts", json=DISTRICT)
            assert waited.status_code == 409
            assert waited.headers["retry-after"] == "1"
            assert waited.json()["type"] == "urn:spp:problem:idempotency-key-in-flight"
            await first.rollback()  # the first request failed: its key is free again
        ran = await client.post("/v1/districts", json=DISTRICT)
        assert ran.status_code == 201
    assert await fetch(db_engine, KEYS) == [{"subject": "tester", "key": "held", "status": 201}]


async def test_a_key_must_be_1_to_255_characters(partnership, db_engine):
    for key in ("", "k" * 256):
        response = await partnership.post("/v1/districts", json=DISTRICT, headers={"Idempotency-Key": key})
        assert response.status_code == 422
        assert [e["field"] for e in response.json()["errors"]] == ["header.Idempotency-Key"]
    assert await fetch(db_engine, "select count(*) as n from partnership.districts") == [{"n": 0}]


async def test_every_post_documents_the_header(partnership):
    paths = (await partnership.get("/openapi.json")).json()["paths"]
    posts = {path: ops["post"] for path, ops in paths.items() if "post" in ops}
    assert "/v1/districts" in posts and "/v1/pairings/{pairing_id}/activate" in posts
    for path, op in posts.items():
        assert "Idempotency-Key" in [p["name"] for p in op.get("parameters", [])], path
