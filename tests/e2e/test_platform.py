"""End to end through real processes: the gateway in front of three services on loopback."""

import time

import httpx
import pytest

from tests.conftest import fetch

pytestmark = pytest.mark.e2e


async def test_pairing_with_activity_through_gateway_then_partnership_down(platform, token, db_engine):
    gateway = platform.url("gateway")
    async with httpx.AsyncClient(base_url=f"{gateway}/api/v1", timeout=10,
                                 headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"}) as client:
        assert (await client.post("/districts", json={"code": "110119", "name": "延庆区"})).status_code == 201
        for code, locality in (("YQ01", "urban"), ("YQ04", "rural")):
            created = await client.post("/schools", json={
                "code": code, "name": f"北京市延庆区{code}学校", "district_code": "110119", "stage": "primary",
                "locality": locality, "primary_enrollment": 300})
            assert created.status_code == 201
        pairing = await client.post("/pairings", json={
            "lead_school_code": "YQ01", "partner_school_code": "YQ04", "program": "城乡手拉手",
            "start_date": "2024-09-01", "end_date": "2025-08-31"})
        assert pairing.status_code == 201
        assert pairing.headers["location"] == f"/api/v1/pairings/{pairing.json()['id']}"
        pairing_id = pairing.json()["id"]
        assert (await client.post(f"/pairings/{pairing_id}/activate")).json()["status"] == "active"
        activity = await client.post(f"/pairings/{pairing_id}/activities", json={
            "kind": "joint_research", "date": "2024-11-20", "title": "联合教研：语文阅读",
            "teacher_participants": 12, "student_participants": 0})
        assert activity.status_code == 201
        rows = await fetch(db_engine, "select a.title, p.status from partnership.activities a "
                                      "join partnership.pairings p on p.id = a.pairing_id")
        assert rows == [{"title": "联合教研：语文阅读", "status": "active"}]

        ready = await client.get(f"{gateway}/readyz")
        assert ready.json()["upstreams"] == {"partnership": "ready", "rotation": "ready", "training": "ready"}

        platform.stop("partnership")
        started = time.monotonic()
        down = await client.get("/schools")
        elapsed = time.monotonic() - started
        assert down.status_code == 503
        assert down.headers["content-type"] == "application/problem+json"
        assert down.json()["upstream"] == "partnership"
        assert elapsed < 2.0
        # the gateway itself stays ready and says which upstream is gone
        ready = await client.get(f"{gateway}/readyz")
        assert ready.status_code == 200
        assert ready.json()["upstreams"]["partnership"] in ("down", "circuit_open")
