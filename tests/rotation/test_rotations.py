"""Rotations through HTTP: creation rules, the workflow, its history, date changes, lists and scope."""

from __future__ import annotations

from tests.conftest import fetch
from tests.rotation import factories as f
from tests.rotation.factories import PROBLEM

ROTATIONS = ("select staff_id::text, from_school_code, from_district_code, to_school_code, to_district_code, "
             "mode, start_date::text, end_date::text, status, version from rotation.rotations order by start_date")


def body(staff_id: str, **overrides) -> dict:
    return {"staff_id": staff_id, "to_school_code": "11011901", "mode": "full_time",
            "start_date": "2024-09-01", "end_date": "2025-08-31", **overrides}


class TestCreate:
    async def test_created_planned_from_home_school(self, partnership, rotation, db_engine):
        await f.chaoyang_with_schools(partnership)
        member = await f.staff(rotation, name="张伟")
        response = await rotation.post("/v1/rotations", json=body(member["id"], mode="part_time"))
        assert response.status_code == 201, response.text
        created = response.json()
        assert response.headers["location"] == f"/api/v1/rotations/{created['id']}"
        assert created["status"] == "planned"
        assert await fetch(db_engine, ROTATIONS) == [{
            "staff_id": member["id"], "from_school_code": "11010501", "from_district_code": "110105",
            "to_school_code": "11011901", "to_district_code": "110119", "mode": "part_time",
            "start_date": "2024-09-01", "end_date": "2025-08-31", "status": "planned", "version": 1}]
        history = await fetch(db_engine, "select from_status, to_status, actor from rotation.rotation_transitions")
        assert history == [{"from_status": None, "to_status": "planned", "actor": "tester"}]

    async def test_to_home_school_is_422(self, partnership, rotation, db_engine):
        await f.chaoyang_with_schools(partnership)
        member = await f.staff(rotation)
        response = await rotation.post("/v1/rotations", json=body(member["id"], to_school_code="11010501"))
        assert response.status_code == 422
        assert response.json()["type"] == "urn:spp:problem:same-school"
        assert response.json()["errors"][0]["field"] == "body.to_school_code"
        assert await fetch(db_engine, ROTATIONS) == []

    async def test_unknown_school_staff_plan_and_bad_dates_are_422(self, partnership, rotation, db_engine):
        await f.chaoyang_with_schools(partnership)
        member = await f.staff(rotation)
        cases = [
            (body(member["id"], to_school_code="00000000"), "unknown-school"),
            (body("00000000-0000-0000-0000-000000000000"), "unknown-staff"),
            (body(member["id"], plan_id="00000000-0000-0000-0000-000000000000"), "unknown-plan"),
            (body(member["id"], start_date="2025-09-01", end_date="2025-08-31"), "validation"),
            (body(member["id"], mode="sabbatical"), "validation"),
        ]
        for payload, slug in cases:
            response = await rotation.post("/v1/rotations", json=payload)
            assert response.status_code == 422, payload
            assert response.json()["type"] == f"urn:spp:problem:{slug}"
        assert await fetch(db_engine, ROTATIONS) == []

    async def test_overlap_is_409_named_rule_and_withdrawn_frees_the_dates(self, partnership, rotation, db_engine):
        await f.chaoyang_with_schools(partnership)
        member = await f.staff(rotation)
        first = await f.rotation_of(rotation, member["id"], start="2024-09-01", end="2025-01-31")
        # Inclusive ranges: starting on the other's last day overlaps.
        response = await rotation.post("/v1/rotations", json=body(member["id"], start_date="2025-01-31",
                                                                   end_date="2025-06-30"))
        assert response.status_code == 409
        assert response.headers["content-type"] == PROBLEM
        problem = response.json()
        assert problem["type"] == "urn:spp:problem:rotation-overlap"
        assert problem["constraint"] == "ex_rotations_staff_overlap"
        adjacent = await rotation.post("/v1/rotations", json=body(member["id"], start_date="2025-02-01",
                                                                  end_date="2025-06-30"))
        assert adjacent.status_code == 201
        assert (await rotation.post(f"/v1/rotations/{first['id']}/withdraw")).status_code == 200
        again = await rotation.post("/v1/rotations", json=body(member["id"], start_date="2024-10-01",
                                                               end_date="2025-01-31", to_school_code="11010502"))
        assert again.status_code == 201
        assert [r["status"] for r in await fetch(db_engine, ROTATIONS)] == ["withdrawn", "planned", "planned"]

    async def test_inactive_staff_cannot_rotate(self, partnership, rotation, db_engine):
        await f.chaoyang_with_schools(partnership)
        member = await f.staff(rotation)
        await rotation.patch(f"/v1/staff/{member['id']}", json={"status": "left"})
        response = await rotation.post("/v1/rotations", json=body(member["id"]))
        assert response.status_code == 409
        assert response.json()["type"] == "urn:spp:problem:staff-inactive"
        assert await fetch(db_engine, ROTATIONS) == []

    async def test_scope(self, partnership, rotation, auth, db_engine):
        await f.chaoyang_with_schools(partnership)
        member = await f.staff(rotation)
        assert (await rotation.post("/v1/rotations", json=body(member["id"]),
                                    headers=auth("viewer"))).status_code == 403
        # The receiving district may not send someone else's staff.
        assert (await rotation.post("/v1/rotations", json=body(member["id"]),
                                    headers=auth("district_admin", districts=("110119",)))).status_code == 403
        assert await fetch(db_engine, ROTATIONS) == []
        mine = await rotation.post("/v1/rotations", json=body(member["id"]),
                                   headers=auth("district_admin", districts=("110105",)))
        assert mine.status_code == 201


class TestWorkflow:
    async def test_full_path_with_history(self, partnership, rotation, token, db_engine):
        await f.chaoyang_with_schools(partnership)
        member = await f.staff(rotation)
        created = await f.rotation_of(rotation, member["id"])
        url = f"/v1/rotations/{created['id']}"
        approver = {"Authorization": f"Bearer {token('district_admin', ('110105',), sub='王主任')}"}
        approved = await rotation.post(f"{url}/approve", json={"comment": "区教委审议通过"}, headers=approver)
        assert approved.status_code == 200
        assert approved.json()["status"] == "approved"
        assert (await rotation.post(f"{url}/activate")).json()["status"] == "active"
        completed = await rotation.post(f"{url}/complete", json={})
        assert completed.status_code == 200
        assert completed.json()["status"] == "completed" and completed.json()["version"] == 4
        history = (await rotation.get(f"{url}/history")).json()["items"]
        assert [(h["from_status"], h["to_status"], h["actor"], h["comment"]) for h in history] == [
            (None, "planned", "tester", None),
            ("planned", "approved", "王主任", "区教委审议通过"),
            ("approved", "active", "tester", None),
            ("active", "completed", "tester", None),
        ]
        stored = await fetch(db_engine, "select actor, comment from rotation.rotation_transitions "
                                        "where to_status = 'approved'")
        assert stored == [{"actor": "王主任", "comment": "区教委审议通过"}]

    async def test_illegal_transitions_are_409(self, partnership, rotation, db_engine):
        await f.chaoyang_with_schools(partnership)
        member = await f.staff(rotation)
        planned = await f.rotation_of(rotation, member["id"], start="2020-09-01", end="2021-08-31")
        for action in ("activate", "complete"):
            response = await rotation.post(f"/v1/rotations/{planned['id']}/{action}")
            assert response.status_code == 409
            assert response.json()["type"] == "urn:spp:problem:illegal-transition"
        completed = await f.rotation_of(rotation, member["id"], status="completed")
        withdrawn = await f.rotation_of(rotation, member["id"], start="2026-09-01", end="2027-08-31",
                                        status="withdrawn")
        for rid in (completed["id"], withdrawn["id"]):
            for action in ("approve", "activate", "complete", "withdraw"):
                response = await rotation.post(f"/v1/rotations/{rid}/{action}")
                assert response.status_code == 409, (rid, action)
        statuses = await fetch(db_engine, "select status, version from rotation.rotations order by start_date")
        assert statuses == [{"status": "planned", "version": 1}, {"status": "completed", "version": 4},
                            {"status": "withdrawn", "version": 2}]
        assert (await rotation.post(f"/v1/rotations/{planned['id']}/withdraw")).json()["status"] == "withdrawn"

    async def test_every_state_can_be_withdrawn_before_completion(self, partnership, rotation):
        await f.chaoyang_with_schools(partnership)
        member = await f.staff(rotation)
        for year, status in ((2024, "planned"), (2025, "approved"), (2026, "active")):
            r = await f.rotation_of(rotation, member["id"], start=f"{year}-09-01", end=f"{year + 1}-08-31",
                                    status=status)
            response = await rotation.post(f"/v1/rotations/{r['id']}/withdraw", json={"comment": "家庭原因"})
            assert response.status_code == 200 and response.json()["status"] == "withdrawn"

    async def test_approval_refused_when_staff_left_or_moved(self, partnership, rotation, db_engine):
        await f.chaoyang_with_schools(partnership)
        member = await f.staff(rotation)
        r = await f.rotation_of(rotation, member["id"])
        await rotation.patch(f"/v1/staff/{member['id']}", json={"home_school_code": "11010502"})
        moved = await rotation.post(f"/v1/rotations/{r['id']}/approve")
        assert moved.status_code == 409
        assert moved.json()["type"] == "urn:spp:problem:home-school-changed"
        await rotation.patch(f"/v1/staff/{member['id']}", json={"home_school_code": "11010501", "status": "retired"})
        retired = await rotation.post(f"/v1/rotations/{r['id']}/approve")
        assert retired.json()["type"] == "urn:spp:problem:staff-inactive"
        assert await fetch(db_engine, "select status from rotation.rotations") == [{"status": "planned"}]

    async def test_404_403_and_bad_body(self, partnership, rotation, auth):
        await f.chaoyang_with_schools(partnership)
        member = await f.staff(rotation)
        r = await f.rotation_of(rotation, member["id"])
        missing = "/v1/rotations/00000000-0000-0000-0000-000000000000"
        assert (await rotation.post(f"{missing}/approve")).status_code == 404
        assert (await rotation.get(missing)).status_code == 404
        assert (await rotation.get(f"{missing}/history")).status_code == 404
        receiving = auth("district_admin", districts=("110119",))
        # Rotations into a district are visible there, but only the sending district manages them.
        assert (await rotation.get(f"/v1/rotations/{r['id']}", headers=receiving)).status_code == 200
        assert (await rotation.get(f"/v1/rotations/{r['id']}/history", headers=receiving)).status_code == 200
        assert (await rotation.post(f"/v1/rotations/{r['id']}/approve", headers=receiving)).status_code == 403
        assert (await rotation.get(f"/v1/rotations/{r['id']}",
                                   headers=auth("viewer", districts=("110108",)))).status_code == 403
        assert (await rotation.post(f"/v1/rotations/{r['id']}/approve", json={"comment": 5})).status_code == 422


class TestDateChanges:
    async def test_patch_dates_while_planned_or_approved(self, partnership, rotation, db_engine):
        await f.chaoyang_with_schools(partnership)
        member = await f.staff(rotation)
        r = await f.rotation_of(rotation, member["id"], status="approved")
        response = await rotation.patch(f"/v1/rotations/{r['id']}", json={"end_date": "2025-01-31"},
                                        headers={"If-Match": '"v2"'})
        assert response.status_code == 200, response.text
        assert response.headers["etag"] == '"v3"'
        assert (await fetch(db_engine, ROTATIONS))[0]["end_date"] == "2025-01-31"
        stale = await rotation.patch(f"/v1/rotations/{r['id']}", json={"end_date": "2025-02-28"},
                                     headers={"If-Match": '"v2"'})
        assert stale.status_code == 412
        assert stale.json()["current_etag"] == '"v3"'
        reversed_dates = await rotation.patch(f"/v1/rotations/{r['id']}", json={"start_date": "2025-03-01"})
        assert reversed_dates.status_code == 422
        assert (await fetch(db_engine, ROTATIONS))[0]["start_date"] == "2024-09-01"

    async def test_patch_refused_once_active_and_on_overlap(self, partnership, rotation, db_engine):
        await f.chaoyang_with_schools(partnership)
        member = await f.staff(rotation)
        active = await f.rotation_of(rotation, member["id"], start="2024-09-01", end="2025-01-31", status="active")
        later = await f.rotation_of(rotation, member["id"], start="2025-03-01", end="2025-06-30")
        assert (await rotation.patch(f"/v1/rotations/{active['id']}",
                                     json={"end_date": "2025-02-28"})).status_code == 409
        overlap = await rotation.patch(f"/v1/rotations/{later['id']}", json={"start_date": "2025-01-15"})
        assert overlap.status_code == 409
        assert overlap.json()["type"] == "urn:spp:problem:rotation-overlap"
        assert [r["start_date"] for r in await fetch(db_engine, ROTATIONS)] == ["2024-09-01", "2025-03-01"]
        assert (await rotation.patch("/v1/rotations/00000000-0000-0000-0000-000000000000",
                                     json={"end_date": "2025-02-28"})).status_code == 404


class TestList:
    async def test_filters(self, partnership, rotation, auth):
        await f.chaoyang_with_schools(partnership)
        zhang = await f.staff(rotation, name="张伟")
        li = await f.staff(rotation, name="李娜", home_school_code="11010503", section="junior")
        chen = await f.staff(rotation, name="陈静", home_school_code="11011901")
        out_2024 = await f.rotation_of(rotation, zhang["id"], start="2024-09-01", end="2025-01-31",
                                       status="approved")
        within = await f.rotation_of(rotation, li["id"], to="11010502", start="2025-08-31", end="2025-12-31")
        into = await f.rotation_of(rotation, chen["id"], to="11010501", start="2025-09-01", end="2026-08-31")

        async def ids(headers=None, **params):
            response = await rotation.get("/v1/rotations", params=params, headers=headers or {})
            assert response.status_code == 200, response.text
            return [r["id"] for r in response.json()["items"]]

        assert await ids() == [out_2024["id"], within["id"], into["id"]]
        assert await ids(district_code="110119") == [out_2024["id"], into["id"]]
        assert await ids(academic_year=2024) == [out_2024["id"], within["id"]]
        assert await ids(academic_year=2025) == [into["id"]]
        assert await ids(status="approved") == [out_2024["id"]]
        assert await ids(staff_id=li["id"]) == [within["id"]]
        assert await ids(school_code="11010501") == [out_2024["id"], into["id"]]
        assert await ids(school_code="11010502") == [within["id"]]
        assert await ids(headers=auth("district_admin", districts=("110119",))) == [out_2024["id"], into["id"]]
        page = (await rotation.get("/v1/rotations", params={"limit": 2})).json()
        rest = (await rotation.get("/v1/rotations", params={"limit": 2, "cursor": page["next_cursor"]})).json()
        assert [r["id"] for r in page["items"] + rest["items"]] == [out_2024["id"], within["id"], into["id"]]
        assert (await rotation.get("/v1/rotations", params={"district_code": "110105"},
                                   headers=auth("viewer", districts=("110119",)))).status_code == 403
        assert (await rotation.get("/v1/rotations", params={"status": "lost"})).status_code == 422


async def test_partnership_down_refuses_rotation_policy_and_plan_writes(settings, token, db_engine):
    """Every write that checks a reference answers 503 and stores nothing when partnership is down."""
    import httpx
    from sqlalchemy import text

    from services.rotation.app import create_app
    from tests.conftest import asgi

    async with db_engine.begin() as conn:
        await conn.execute(text(
            "insert into rotation.staff (id, staff_no, name, home_school_code, home_district_code, role, section, "
            "in_post_since) values ('00000000-0000-0000-0000-0000000000aa', 'D1', '张伟', '11010501', '110105', "
            "'teacher', 'primary', '2015-09-01')"))

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    app = create_app(settings, transports={"partnership": httpx.MockTransport(refuse)})
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=asgi(app), base_url="http://rotation",
                                     headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"}) as client:
            responses = [
                await client.post("/v1/rotations", json=body("00000000-0000-0000-0000-0000000000aa")),
                await client.put("/v1/rotation-policies/110105", json={}),
                await client.post("/v1/rotation-plans", json={"district_code": "110105", "academic_year": 2024,
                                                              "title": "计划"}),
            ]
    for response in responses:
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == PROBLEM
    counts = await fetch(db_engine, "select (select count(*) from rotation.rotations) as r, "
                                    "(select count(*) from rotation.rotation_policies) as p, "
                                    "(select count(*) from rotation.rotation_plans) as pl")
    assert counts == [{"r": 0, "p": 0, "pl": 0}]
