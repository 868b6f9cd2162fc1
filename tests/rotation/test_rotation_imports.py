"""Bulk import of historical rotations from district systems: Chinese headers and labels, staff by
工号, schools checked against the registry, overlaps (the exclusion constraint's rule) as row
errors, per-row report, re-import as a no-op, district scope, and the gateway route."""

from __future__ import annotations

from tests.conftest import asgi, fetch
from tests.jobs import run_jobs
from tests.rotation import factories as f

URL = "/v1/imports/rotations"
CSV = {"content-type": "text/csv"}
HEADER = "工号,姓名,交流学校代码,交流方式,开始日期,结束日期,状态,备注\n"
ROTATIONS = ("select s.staff_no, r.from_school_code, r.from_district_code, r.to_school_code, r.to_district_code, "
             "r.mode, r.start_date::text as start, r.end_date::text as end, r.status, r.created_by "
             "from rotation.rotations r join rotation.staff s on s.id = r.staff_id order by s.staff_no, r.start_date")


def _errors(body: dict) -> list[tuple]:
    return [(e["row"], e["field"], e["message"]) for e in body["errors"]]


async def _world(partnership, rotation) -> None:
    await f.chaoyang_with_schools(partnership)
    await f.staff(rotation, staff_no="T001", name="王芳", home_school_code="11010501")
    await f.staff(rotation, staff_no="T002", name="刘洋", home_school_code="11010502")
    await f.staff(rotation, staff_no="Y001", name="延庆老师", home_school_code="11011901")


FILE = HEADER + (
    "T001,王芳,11011901,全职交流,2021-09-01,2022-08-31,已完成,\n"       # 1 good
    "T001,王芳,11010502,学科指导,2023/9/1,2024年8月31日,进行中,\n"      # 2 good (office dates)
    "T002,刘洋,11010503,走教,2022-09-01,2023-08-31,已撤回,\n"          # 3 good (withdrawn)
    "T002,刘洋,11010503,兼职交流,2022-10-01,2023-07-31,已完成,\n"       # 4 good: overlaps only a withdrawn one
    "T001,王芳,11010503,全职交流,2022-03-01,2022-12-31,已完成,\n"       # 5 overlaps row 1 and row 2? row 1
    "T999,无名,11011901,全职交流,2021-09-01,2022-08-31,已完成,\n"       # 6 unknown staff
    "T002,刘洋,99999999,全职交流,2019-09-01,2020-08-31,已完成,\n"       # 7 unknown school
    "T002,刘洋,11010502,全职交流,2018-09-01,2019-08-31,已完成,\n"       # 8 the home school
    "T002,刘洋,11011901,轮岗,2017-09-01,2018-08-31,已完成,\n"          # 9 unknown mode
    "T002,刘洋,11011901,全职交流,2016-09-01,2015-08-31,已完成,\n"       # 10 dates reversed
    "T001,王芳,11011901,全职交流,2021-09-01,2021-12-31,已完成,\n"       # 11 same staff and start as row 1
)
EXPECTED_ERRORS = [
    (5, "start_date", "overlaps row 1 of this file"),
    (6, "staff_no", "unknown staff member T999"),
    (7, "to_school_code", "unknown school 99999999"),
    (8, "to_school_code", "equals the home school of T002"),
    (9, "mode", "交流方式 must be one of 'full_time', 'part_time' or 'subject_guidance'"),
    (10, None, "end_date must not be before start_date"),
    (11, "staff_no", "duplicate of row 1 in this file"),
]
STORED = [
    {"staff_no": "T001", "from_school_code": "11010501", "from_district_code": "110105",
     "to_school_code": "11011901", "to_district_code": "110119", "mode": "full_time", "start": "2021-09-01",
     "end": "2022-08-31", "status": "completed", "created_by": "tester"},
    {"staff_no": "T001", "from_school_code": "11010501", "from_district_code": "110105",
     "to_school_code": "11010502", "to_district_code": "110105", "mode": "subject_guidance", "start": "2023-09-01",
     "end": "2024-08-31", "status": "active", "created_by": "tester"},
    {"staff_no": "T002", "from_school_code": "11010502", "from_district_code": "110105",
     "to_school_code": "11010503", "to_district_code": "110105", "mode": "part_time", "start": "2022-09-01",
     "end": "2023-08-31", "status": "withdrawn", "created_by": "tester"},
    {"staff_no": "T002", "from_school_code": "11010502", "from_district_code": "110105",
     "to_school_code": "11010503", "to_district_code": "110105", "mode": "part_time", "start": "2022-10-01",
     "end": "2023-07-31", "status": "completed", "created_by": "tester"},
]


async def test_all_or_nothing_rejects_with_the_exact_report(partnership, rotation, db_engine):
    await _world(partnership, rotation)
    response = await rotation.post(URL, content=FILE.encode("gb18030"), headers=CSV)
    assert response.status_code == 422, response.text
    body = response.json()
    assert (body["import_status"], body["kind"], body["total_rows"], body["valid_rows"], body["rejected_rows"]) == (
        "rejected", "rotations", 11, 4, 7)
    assert _errors(body) == EXPECTED_ERRORS
    assert body["id"].startswith("rotations.")
    assert await fetch(db_engine, ROTATIONS) == []


async def test_partial_stores_the_good_rows_with_history_and_feed(partnership, rotation, db_engine):
    await _world(partnership, rotation)
    response = await rotation.post(URL, params={"mode": "partial"}, content=FILE.encode("gb18030"), headers=CSV)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["inserted"], body["updated"], body["rejected_rows"]) == ("completed", 4, 0, 7)
    assert _errors(body) == EXPECTED_ERRORS
    assert await fetch(db_engine, ROTATIONS) == STORED
    assert await fetch(db_engine, "select from_status, to_status, actor, comment from rotation.rotation_transitions "
                                  "order by to_status") == [
        {"from_status": None, "to_status": status, "actor": "tester", "comment": "imported"}
        for status in ("active", "completed", "completed", "withdrawn")]
    feed = await fetch(db_engine, "select entity, op, state->>'status' as status from rotation.changes "
                                  "where entity = 'rotation' order by seq")
    assert [(c["entity"], c["op"]) for c in feed] == [("rotation", "create")] * 4
    # The same file again: every good row is already there (a no-op); row 5 now also overlaps the
    # stored copy of row 1.
    again = await rotation.post(URL, params={"mode": "partial"}, content=FILE.encode("gb18030"), headers=CSV)
    assert (again.json()["inserted"], again.json()["updated"], _errors(again.json())) == (0, 0, [
        (5, "start_date", "overlaps the rotation of T001 from 2021-09-01 to 2022-08-31 (completed)"),
        *EXPECTED_ERRORS])
    assert len(await fetch(db_engine, ROTATIONS)) == 4


async def test_an_overlap_with_a_stored_rotation_is_a_row_error(partnership, rotation, db_engine):
    await _world(partnership, rotation)
    staff = (await rotation.get("/v1/staff", params={"limit": 10})).json()["items"]
    t001 = next(s for s in staff if s["staff_no"] == "T001")
    await f.rotation_of(rotation, t001["id"], to="11011901", start="2024-09-01", end="2025-08-31", status="approved")
    rows = [{"staff_no": "T001", "to_school_code": "11010503", "mode": "part_time", "start_date": "2025-03-01",
             "end_date": "2025-06-30", "status": "planned"},
            {"staff_no": "T001", "to_school_code": "11010503", "mode": "part_time", "start_date": "2025-09-01",
             "end_date": "2026-06-30", "status": "planned"}]
    response = await rotation.post(URL, params={"mode": "partial"}, json=rows)
    assert response.status_code == 200, response.text
    assert _errors(response.json()) == [
        (1, "start_date", "overlaps the rotation of T001 from 2024-09-01 to 2025-08-31 (approved)")]
    assert [(r["start"], r["status"]) for r in await fetch(db_engine, ROTATIONS)] == [
        ("2024-09-01", "approved"), ("2025-09-01", "planned")]


async def test_an_importer_limited_to_districts_records_their_staff_only(partnership, rotation, auth, db_engine):
    await _world(partnership, rotation)
    rows = [{"工号": "T001", "交流学校代码": "11011901", "交流方式": "全职交流", "开始日期": "2021-09-01",
             "结束日期": "2022-08-31", "状态": "已完成"},
            {"工号": "Y001", "交流学校代码": "11010501", "交流方式": "全职交流", "开始日期": "2021-09-01",
             "结束日期": "2022-08-31", "状态": "已完成"}]
    for role in ("integrator", "district_admin"):
        refused = await rotation.post(URL, json=rows, headers=auth(role, districts=("110105",)))
        assert refused.status_code == 422, refused.text
        assert _errors(refused.json()) == [(2, None, "outside your districts")]
    assert await fetch(db_engine, ROTATIONS) == []
    assert (await rotation.post(URL, json=rows, headers=auth("viewer"))).status_code == 403
    partial = await rotation.post(URL, json=rows, params={"mode": "partial"},
                                  headers=auth("integrator", districts=("110105",)))
    assert (partial.status_code, partial.json()["inserted"]) == (200, 1)
    assert [r["staff_no"] for r in await fetch(db_engine, ROTATIONS)] == ["T001"]


async def test_a_large_rotations_file_runs_as_a_job(partnership, partnership_app, rotation, rotation_app, settings,
                                                    db_engine):
    await _world(partnership, rotation)
    rotation_app.state.settings = settings.model_copy(update={"import_sync_rows": 2})
    body = HEADER + "".join(f"T001,王芳,11011901,全职交流,{2000 + i}-09-01,{2001 + i}-06-30,已完成,\n"
                            for i in range(5))
    started = await rotation.post(URL, content=body.encode(), headers=CSV)
    assert (started.status_code, started.json()["status"]) == (202, "running")
    await run_jobs(settings, partnership=asgi(partnership_app))
    report = (await rotation.get(f"/v1/imports/{started.json()['id']}")).json()
    assert (report["status"], report["inserted"], report["errors"]) == ("completed", 5, [])
    assert {r["created_by"] for r in await fetch(db_engine, ROTATIONS)} == {"tester"}


async def test_the_gateway_routes_rotations_imports_to_rotation(gateway, partnership, rotation, db_engine):
    await _world(partnership, rotation)
    response = await gateway.post("/api/v1/imports/rotations", content=FILE.encode("gb18030"),
                                  params={"mode": "partial"}, headers=CSV)
    assert response.status_code == 200, response.text
    report = await gateway.get(f"/api/v1/imports/{response.json()['id']}")
    assert (report.status_code, report.json()["inserted"]) == (200, 4)
