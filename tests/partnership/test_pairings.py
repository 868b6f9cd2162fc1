"""Pairings, their state machine, activities, and the overlap rule held by PostgreSQL."""

import asyncio

from tests.conftest import fetch
from tests.partnership import factories as f


async def _two_schools(client):
    await f.district(client)
    await f.school(client, "URBAN1", locality="urban")
    await f.school(client, "RURAL1", locality="rural")


class TestCreatePairing:
    async def test_created_proposed(self, partnership, db_engine):
        await _two_schools(partnership)
        response = await partnership.post("/v1/pairings", json={
            "lead_school_code": "URBAN1", "partner_school_code": "RURAL1", "program": "手拉手",
            "start_date": "2024-09-01", "end_date": "2025-08-31"})
        assert response.status_code == 201
        body = response.json()
        assert body["status"] == "proposed"
        assert response.headers["location"] == f"/api/v1/pairings/{body['id']}"
        rows = await fetch(db_engine, "select lead_school_code, partner_school_code, status, "
                                      "start_date::text as s, end_date::text as e from partnership.pairings")
        assert rows == [{"lead_school_code": "URBAN1", "partner_school_code": "RURAL1", "status": "proposed",
                         "s": "2024-09-01", "e": "2025-08-31"}]

    async def test_same_school_422(self, partnership, db_engine):
        await _two_schools(partnership)
        response = await partnership.post("/v1/pairings", json={
            "lead_school_code": "URBAN1", "partner_school_code": "URBAN1", "program": "x",
            "start_date": "2024-09-01", "end_date": "2025-08-31"})
        assert response.status_code == 422
        assert response.json()["type"] == "urn:spp:problem:same-school"
        assert await fetch(db_engine, "select count(*) as n from partnership.pairings") == [{"n": 0}]

    async def test_unknown_school_and_reversed_dates_422(self, partnership):
        await _two_schools(partnership)
        unknown = await partnership.post("/v1/pairings", json={
            "lead_school_code": "URBAN1", "partner_school_code": "NOPE", "program": "x",
            "start_date": "2024-09-01", "end_date": "2025-08-31"})
        assert unknown.status_code == 422
        assert unknown.json()["errors"][0]["field"] == "body.partner_school_code"
        reversed_dates = await partnership.post("/v1/pairings", json={
            "lead_school_code": "URBAN1", "partner_school_code": "RURAL1", "program": "x",
            "start_date": "2025-09-01", "end_date": "2025-08-31"})
        assert reversed_dates.status_code == 422

    async def test_overlap_409_in_either_direction_until_ended(self, partnership, db_engine):
        await _two_schools(partnership)
        first = await f.pairing(partnership, "URBAN1", "RURAL1", start="2024-09-01", end="2025-08-31")
        for lead, partner, start, end in [("URBAN1", "RURAL1", "2025-08-31", "2026-08-31"),  # shares one day
                                          ("RURAL1", "URBAN1", "2024-01-01", "2024-09-01")]:
            response = await partnership.post("/v1/pairings", json={
                "lead_school_code": lead, "partner_school_code": partner, "program": "x",
                "start_date": start, "end_date": end})
            assert response.status_code == 409, (lead, start)
            assert response.json()["type"] == "urn:spp:problem:pairing-overlap"
        # the day after the range is free
        await f.pairing(partnership, "URBAN1", "RURAL1", start="2025-09-01", end="2026-08-31")
        # once the first has ended, its dates are free again
        assert (await partnership.post(f"/v1/pairings/{first['id']}/end")).status_code == 200
        await f.pairing(partnership, "RURAL1", "URBAN1", start="2024-09-01", end="2025-08-31")
        rows = await fetch(db_engine, "select status, count(*) as n from partnership.pairings "
                                      "group by status order by status")
        assert rows == [{"status": "ended", "n": 1}, {"status": "proposed", "n": 2}]

    async def test_race_twenty_concurrent_overlapping_posts(self, partnership, db_engine):
        await _two_schools(partnership)
        body = {"lead_school_code": "URBAN1", "partner_school_code": "RURAL1", "program": "并发",
                "start_date": "2024-09-01", "end_date": "2025-08-31"}
        responses = await asyncio.gather(*(partnership.post("/v1/pairings", json=body) for _ in range(20)))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] + [409] * 19
        assert await fetch(db_engine, "select count(*) as n from partnership.pairings") == [{"n": 1}]


class TestTransitions:
    async def test_state_machine(self, partnership, db_engine):
        await _two_schools(partnership)
        pid = (await f.pairing(partnership, "URBAN1", "RURAL1"))["id"]
        steps = [("suspend", 409), ("activate", 200), ("activate", 409), ("suspend", 200),
                 ("suspend", 409), ("activate", 200), ("end", 200), ("activate", 409), ("end", 409)]
        for action, expected in steps:
            response = await partnership.post(f"/v1/pairings/{pid}/{action}")
            assert response.status_code == expected, (action, response.text)
            if expected == 409:
                assert response.json()["type"] == "urn:spp:problem:illegal-transition"
        assert await fetch(db_engine, "select status, version from partnership.pairings") == [
            {"status": "ended", "version": 5}]

    async def test_unknown_pairing_404(self, partnership):
        response = await partnership.post("/v1/pairings/00000000-0000-0000-0000-000000000000/activate")
        assert response.status_code == 404
        assert (await partnership.post("/v1/pairings/not-a-uuid/activate")).status_code == 422


class TestActivities:
    async def test_only_on_active_pairing_inside_range(self, partnership, db_engine):
        await _two_schools(partnership)
        pid = (await f.pairing(partnership, "URBAN1", "RURAL1", start="2024-09-01", end="2025-08-31"))["id"]
        body = {"kind": "lesson_delivery", "date": "2024-10-10", "title": "送课到校：数学",
                "teacher_participants": 3, "student_participants": 40}
        proposed = await partnership.post(f"/v1/pairings/{pid}/activities", json=body)
        assert proposed.status_code == 409
        assert proposed.json()["type"] == "urn:spp:problem:pairing-not-active"
        await partnership.post(f"/v1/pairings/{pid}/activate")
        outside = await partnership.post(f"/v1/pairings/{pid}/activities", json={**body, "date": "2025-09-01"})
        assert outside.status_code == 409
        assert outside.json()["type"] == "urn:spp:problem:activity-outside-pairing"
        created = await partnership.post(f"/v1/pairings/{pid}/activities", json=body)
        assert created.status_code == 201
        edge = await partnership.post(f"/v1/pairings/{pid}/activities", json={**body, "date": "2025-08-31"})
        assert edge.status_code == 201
        negative = await partnership.post(f"/v1/pairings/{pid}/activities",
                                          json={**body, "teacher_participants": -1})
        assert negative.status_code == 422
        await partnership.post(f"/v1/pairings/{pid}/suspend")
        suspended = await partnership.post(f"/v1/pairings/{pid}/activities", json=body)
        assert suspended.status_code == 409
        rows = await fetch(db_engine, "select date::text as d, title, teacher_participants as t, "
                                      "student_participants as s from partnership.activities order by date")
        assert rows == [{"d": "2024-10-10", "title": "送课到校：数学", "t": 3, "s": 40},
                        {"d": "2025-08-31", "title": "送课到校：数学", "t": 3, "s": 40}]

    async def test_list_filters(self, partnership):
        await _two_schools(partnership)
        await f.district(partnership, *f.YANQING)
        await f.school(partnership, "Y1", district_code="110119", locality="rural")
        p1 = (await f.pairing(partnership, "URBAN1", "RURAL1", activate=True))["id"]
        p2 = (await f.pairing(partnership, "URBAN1", "Y1", activate=True))["id"]
        await f.activity(partnership, p1, date="2024-10-01", kind="joint_research")
        await f.activity(partnership, p2, date="2024-11-01", kind="lesson_delivery")
        await f.activity(partnership, p2, date="2025-03-01", kind="lesson_delivery")

        async def dates(**params):
            response = await partnership.get("/v1/activities", params=params)
            assert response.status_code == 200
            return [a["date"] for a in response.json()["items"]]

        assert await dates(district_code="110119") == ["2024-11-01", "2025-03-01"]
        assert await dates(district_code="110105") == ["2024-10-01", "2024-11-01", "2025-03-01"]
        assert await dates(pairing_id=p1) == ["2024-10-01"]
        assert await dates(kind="lesson_delivery", **{"from": "2024-11-02"}) == ["2025-03-01"]
        assert await dates(to="2024-10-31") == ["2024-10-01"]

    async def test_pairing_list_filters(self, partnership):
        await _two_schools(partnership)
        await f.district(partnership, *f.YANQING)
        await f.school(partnership, "Y1", district_code="110119", locality="rural")
        a = await f.pairing(partnership, "URBAN1", "RURAL1", activate=True)
        b = await f.pairing(partnership, "URBAN1", "Y1")

        async def ids(**params):
            return [p["id"] for p in (await partnership.get("/v1/pairings", params=params)).json()["items"]]

        assert await ids(district_code="110119") == [b["id"]]
        assert await ids(school_code="URBAN1") == [a["id"], b["id"]]
        assert await ids(status="active") == [a["id"]]
        assert (await partnership.get("/v1/pairings", params={"status": "bogus"})).status_code == 422

    async def test_school_admin_records_for_own_school_only(self, partnership, auth):
        await _two_schools(partnership)
        await f.school(partnership, "OTHER", locality="urban")
        pid = (await f.pairing(partnership, "URBAN1", "RURAL1", activate=True))["id"]
        body = {"kind": "student_exchange", "date": "2024-10-10", "title": "学生交流"}
        mine = auth("school_admin", districts=("110105",), schools=("RURAL1",))
        other = auth("school_admin", districts=("110105",), schools=("OTHER",))
        assert (await partnership.post(f"/v1/pairings/{pid}/activities", json=body, headers=mine)).status_code == 201
        assert (await partnership.post(f"/v1/pairings/{pid}/activities", json=body,
                                       headers=other)).status_code == 403
        # a school admin cannot change the pairing itself
        assert (await partnership.post(f"/v1/pairings/{pid}/suspend", headers=mine)).status_code == 403
