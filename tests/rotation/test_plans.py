"""District rotation plans: grouping, and approval of all planned rotations at once or none."""

from __future__ import annotations

from tests.conftest import fetch
from tests.rotation import factories as f

PLAN = {"district_code": "110105", "academic_year": 2024, "title": "朝阳区2024学年干部教师交流轮岗计划"}


async def _plan(rotation, **overrides) -> dict:
    response = await rotation.post("/v1/rotation-plans", json={**PLAN, **overrides})
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_get_and_list(partnership, rotation, auth, db_engine):
    await f.chaoyang_with_schools(partnership)
    response = await rotation.post("/v1/rotation-plans", json=PLAN)
    assert response.status_code == 201
    plan = response.json()
    assert response.headers["location"] == f"/api/v1/rotation-plans/{plan['id']}"
    assert (plan["status"], plan["rotations"], plan["title"]) == ("draft", 0, PLAN["title"])
    assert await fetch(db_engine, "select district_code, academic_year, title, status from rotation.rotation_plans") \
        == [{**PLAN, "status": "draft"}]
    assert (await rotation.post("/v1/rotation-plans", json=PLAN)).status_code == 409
    assert (await rotation.post("/v1/rotation-plans", json={**PLAN, "district_code": "110199"})).status_code == 422
    assert (await rotation.post("/v1/rotation-plans", json=PLAN, headers=auth("viewer"))).status_code == 403
    assert (await rotation.get(f"/v1/rotation-plans/{plan['id']}")).json()["id"] == plan["id"]
    assert (await rotation.get("/v1/rotation-plans/00000000-0000-0000-0000-000000000000")).status_code == 404
    assert (await rotation.get(f"/v1/rotation-plans/{plan['id']}",
                               headers=auth("viewer", districts=("110119",)))).status_code == 403
    listed = await rotation.get("/v1/rotation-plans", params={"district_code": "110105", "academic_year": 2024})
    assert [p["id"] for p in listed.json()["items"]] == [plan["id"]]


async def test_add_rotations_by_create_and_by_id(partnership, rotation, db_engine):
    await f.chaoyang_with_schools(partnership)
    plan = await _plan(rotation)
    zhang = await f.staff(rotation, name="张伟")
    li = await f.staff(rotation, name="李娜")
    chen = await f.staff(rotation, name="陈静", home_school_code="11011901")
    await f.rotation_of(rotation, zhang["id"], plan_id=plan["id"])
    loose = await f.rotation_of(rotation, li["id"], start="2025-02-01", end="2025-07-15", status="approved")
    added = await rotation.post(f"/v1/rotation-plans/{plan['id']}/rotations", json={"rotation_id": loose["id"]})
    assert added.status_code == 200, added.text
    assert added.json()["rotations"] == 2
    assert added.json()["rotations_by_status"] == {"planned": 1, "approved": 1}
    # Adding again is harmless; other districts' and other years' rotations do not fit.
    assert (await rotation.post(f"/v1/rotation-plans/{plan['id']}/rotations",
                                json={"rotation_id": loose["id"]})).status_code == 200
    yanqing = await f.rotation_of(rotation, chen["id"], to="11010501")
    wrong_district = await rotation.post(f"/v1/rotation-plans/{plan['id']}/rotations",
                                         json={"rotation_id": yanqing["id"]})
    assert (wrong_district.status_code, wrong_district.json()["type"]) == (409, "urn:spp:problem:plan-district")
    next_year = await rotation.post("/v1/rotations", json={
        "staff_id": zhang["id"], "to_school_code": "11011901", "mode": "part_time", "start_date": "2025-09-01",
        "end_date": "2025-12-31", "plan_id": plan["id"]})
    assert (next_year.status_code, next_year.json()["type"]) == (409, "urn:spp:problem:plan-academic-year")
    unknown = await rotation.post(f"/v1/rotation-plans/{plan['id']}/rotations",
                                  json={"rotation_id": "00000000-0000-0000-0000-000000000000"})
    assert unknown.status_code == 422
    rows = await fetch(db_engine, "select count(*) as n from rotation.rotations where plan_id = :p", p=plan["id"])
    assert rows == [{"n": 2}]
    listed = await rotation.get("/v1/rotations", params={"plan_id": plan["id"]})
    assert len(listed.json()["items"]) == 2


async def test_approve_all_planned_in_one_transaction(partnership, rotation, token, db_engine):
    await f.chaoyang_with_schools(partnership)
    plan = await _plan(rotation)
    people = [await f.staff(rotation, name=n) for n in ("张伟", "李娜", "王芳")]
    planned = [await f.rotation_of(rotation, p["id"], plan_id=plan["id"]) for p in people[:2]]
    withdrawn = await f.rotation_of(rotation, people[2]["id"], plan_id=plan["id"], status="withdrawn")
    headers = {"Authorization": f"Bearer {token('district_admin', ('110105',), sub='刘局长')}"}
    response = await rotation.post(f"/v1/rotation-plans/{plan['id']}/approve", json={"comment": "局务会通过"},
                                   headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["approved_by"]) == ("approved", "刘局长")
    assert body["rotations_by_status"] == {"approved": 2, "withdrawn": 1}
    rows = await fetch(db_engine, "select id::text, status, version from rotation.rotations order by id")
    assert {r["id"]: (r["status"], r["version"]) for r in rows} == {
        planned[0]["id"]: ("approved", 2), planned[1]["id"]: ("approved", 2), withdrawn["id"]: ("withdrawn", 2)}
    history = await fetch(db_engine, "select rotation_id::text, actor, comment from rotation.rotation_transitions "
                                     "where to_status = 'approved' order by rotation_id")
    assert history == sorted([{"rotation_id": r["id"], "actor": "刘局长", "comment": "局务会通过"} for r in planned],
                             key=lambda h: h["rotation_id"])
    again = await rotation.post(f"/v1/rotation-plans/{plan['id']}/approve")
    assert (again.status_code, again.json()["type"]) == (409, "urn:spp:problem:illegal-transition")
    closed = await rotation.post("/v1/rotations", json={
        "staff_id": people[2]["id"], "to_school_code": "11011901", "mode": "part_time",
        "start_date": "2024-09-01", "end_date": "2024-12-31", "plan_id": plan["id"]})
    assert (closed.status_code, closed.json()["type"]) == (409, "urn:spp:problem:plan-closed")


async def test_approve_none_when_any_rule_fails(partnership, rotation, db_engine):
    await f.chaoyang_with_schools(partnership)
    plan = await _plan(rotation)
    fine, retiring, moved = [await f.staff(rotation, name=n) for n in ("张伟", "李娜", "王芳")]
    ok = await f.rotation_of(rotation, fine["id"], plan_id=plan["id"])
    r_retired = await f.rotation_of(rotation, retiring["id"], plan_id=plan["id"])
    r_moved = await f.rotation_of(rotation, moved["id"], plan_id=plan["id"])
    await rotation.patch(f"/v1/staff/{retiring['id']}", json={"status": "retired"})
    await rotation.patch(f"/v1/staff/{moved['id']}", json={"home_school_code": "11010502"})
    # A date change after joining can move a rotation out of the plan's year.
    await rotation.patch(f"/v1/rotations/{ok['id']}", json={"start_date": "2025-09-01", "end_date": "2026-01-31"})
    response = await rotation.post(f"/v1/rotation-plans/{plan['id']}/approve")
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"] == "urn:spp:problem:plan-rules"
    failures = {(f_["rotation_id"], f_["rule"]) for f_ in problem["failures"]}
    assert failures == {(ok["id"], "plan-academic-year"), (r_retired["id"], "staff-inactive"),
                        (r_moved["id"], "home-school-changed")}
    assert await fetch(db_engine, "select distinct status from rotation.rotations") == [{"status": "planned"}]
    assert await fetch(db_engine, "select status from rotation.rotation_plans") == [{"status": "draft"}]
    assert await fetch(db_engine, "select count(*) as n from rotation.rotation_transitions "
                                  "where to_status = 'approved'") == [{"n": 0}]


async def test_empty_plan_and_scope(partnership, rotation, auth):
    await f.chaoyang_with_schools(partnership)
    plan = await _plan(rotation)
    empty = await rotation.post(f"/v1/rotation-plans/{plan['id']}/approve")
    assert (empty.status_code, empty.json()["type"]) == (409, "urn:spp:problem:plan-empty")
    assert (await rotation.post(f"/v1/rotation-plans/{plan['id']}/approve",
                                headers=auth("district_admin", districts=("110119",)))).status_code == 403
    assert (await rotation.post("/v1/rotation-plans/00000000-0000-0000-0000-000000000000/approve")).status_code == 404
