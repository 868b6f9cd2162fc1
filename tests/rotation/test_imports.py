"""Bulk import of staff: GB18030 CSV with Chinese headers and labels, home schools checked against the
partnership registry in one call, per-row report, both modes, upsert by staff_no, district scope."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from services.rotation.app import create_app
from tests.conftest import asgi, fetch
from tests.feed import feed_count, feed_items, synced
from tests.jobs import run_jobs
from tests.races import against_an_uncommitted_write
from tests.rotation import factories as f

HEADER = "工号,姓名,任职学校代码,岗位,任教学段,学科,骨干级别,现岗位起始日期,退休日期,备注\n"
GOOD_AND_BAD = HEADER + (
    "T001,王芳,11010501,教师,小学,语文,区级,2015-09-01,,\n"            # row 1: good
    "T002,刘洋,11011901,校长,初中,,无,2018/9/1,2035年7月31日,\n"       # row 2: good (延庆, office dates)
    "T003,陈静,99999999,教师,小学,数学,无,2016-09-01,,\n"              # row 3: unknown school
    "T004,赵磊,11010502,保安,小学,数学,无,2016-09-01,,\n"              # row 4: bad role
    "T001,王芳(重复),11010501,教师,小学,语文,无,2015-09-01,,\n"          # row 5: duplicate staff_no
    "T005,孙丽,11010503,副校长,初中,英语,市级,2016-02-30,,\n"           # row 6: bad date
)
CSV_GB18030 = GOOD_AND_BAD.encode("gb18030")
CSV = {"content-type": "text/csv"}
STAFF = ("select staff_no, name, home_school_code, home_district_code, role, section, subject, backbone_level, "
         "in_post_since::text, retirement_date::text, status, version from rotation.staff order by staff_no")


def _errors(body: dict) -> list[tuple]:
    return [(e["row"], e["field"], e["message"]) for e in body["errors"]]


EXPECTED_ERRORS = [
    (3, "home_school_code", "unknown school 99999999"),
    (4, "role", "岗位 must be one of 'teacher', 'principal', 'vice_principal' or 'middle_manager'"),
    (5, "staff_no", "duplicate of row 1 in this file"),
    (6, "in_post_since", "现岗位起始日期 must be a date such as 2024-09-01"),
]
GOOD_ROWS = [
    {"staff_no": "T001", "name": "王芳", "home_school_code": "11010501", "home_district_code": "110105",
     "role": "teacher", "section": "primary", "subject": "语文", "backbone_level": "district",
     "in_post_since": "2015-09-01", "retirement_date": None, "status": "active", "version": 1},
    {"staff_no": "T002", "name": "刘洋", "home_school_code": "11011901", "home_district_code": "110119",
     "role": "principal", "section": "junior", "subject": None, "backbone_level": "none",
     "in_post_since": "2018-09-01", "retirement_date": "2035-07-31", "status": "active", "version": 1},
]


async def test_all_or_nothing_rejects_with_exact_report(partnership, rotation, db_engine):
    await f.chaoyang_with_schools(partnership)
    response = await rotation.post("/v1/imports/staff", content=CSV_GB18030, headers=CSV)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == f.PROBLEM
    body = response.json()
    assert (body["import_status"], body["kind"], body["total_rows"], body["valid_rows"], body["rejected_rows"],
            body["inserted"], body["updated"]) == ("rejected", "staff", 6, 2, 4, 0, 0)
    assert _errors(body) == EXPECTED_ERRORS
    assert await fetch(db_engine, "select count(*) as n from rotation.staff") == [{"n": 0}]
    assert await feed_count(db_engine, "rotation") == 0
    assert response.headers["location"] == f"/api/v1/imports/{body['id']}"
    assert body["id"].startswith("staff.")  # the gateway routes /imports/staff.* to rotation
    saved = await rotation.get(f"/v1/imports/{body['id']}")
    assert saved.status_code == 200
    assert (saved.json()["status"], _errors(saved.json())) == ("rejected", EXPECTED_ERRORS)


async def test_partial_keeps_good_rows_and_feeds_the_change_feed(partnership, rotation, db_engine):
    await f.chaoyang_with_schools(partnership)
    response = await rotation.post("/v1/imports/staff", params={"mode": "partial"}, content=CSV_GB18030,
                                   headers=CSV)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["inserted"], body["updated"], body["valid_rows"], body["rejected_rows"]) == (
        "completed", 2, 0, 2, 4)
    assert _errors(body) == EXPECTED_ERRORS
    assert await fetch(db_engine, STAFF) == GOOD_ROWS
    feed = await feed_items(rotation, 2)
    assert [(c["entity"], c["key"], c["op"]) for c in feed] == [("staff", "T001", "create"),
                                                                ("staff", "T002", "create")]
    assert (feed[1]["state"]["home_district_code"], feed[1]["state"]["role"]) == ("110119", "principal")
    # Imported staff are ordinary staff: readable, with an ETag, and counted by district.
    listed = (await rotation.get("/v1/staff", params={"district_code": "110119"})).json()["items"]
    assert [s["staff_no"] for s in listed] == ["T002"]


async def test_dry_run_writes_nothing(partnership, rotation, db_engine):
    await f.chaoyang_with_schools(partnership)
    response = await rotation.post("/v1/imports/staff", params={"dry_run": "true", "mode": "partial"},
                                   content=CSV_GB18030, headers=CSV)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["valid_rows"], body["inserted"]) == ("validated", 2, 0)
    assert _errors(body) == EXPECTED_ERRORS
    assert await fetch(db_engine, "select count(*) as n from rotation.staff") == [{"n": 0}]
    assert await feed_count(db_engine, "rotation") == 0


async def test_upsert_by_staff_no_utf8_bom_english_headers(partnership, rotation, db_engine):
    await f.chaoyang_with_schools(partnership)
    existing = await f.staff(rotation, staff_no="T001", name="王芳", subject="数学", retirement_date="2040-01-31")
    status = await rotation.patch(f"/v1/staff/{existing['id']}", json={"status": "left"})
    assert status.status_code == 200
    body = ("\ufeffstaff_no,name,home_school_code,role,section,subject,backbone_level,in_post_since\n"
            "T001,王芳,11011901,teacher,junior,物理,municipal,2024-09-01\n"
            "T009,周杰,11010502,middle_manager,primary,,,20200901\n").encode("utf-8")
    response = await rotation.post("/v1/imports/staff", content=body, headers=CSV)
    assert response.status_code == 200, response.text
    assert (response.json()["inserted"], response.json()["updated"]) == (1, 1)
    assert await fetch(db_engine, STAFF) == [
        # Moved to a 延庆 school: the district is refreshed; the status is not a column of the file.
        {"staff_no": "T001", "name": "王芳", "home_school_code": "11011901", "home_district_code": "110119",
         "role": "teacher", "section": "junior", "subject": "物理", "backbone_level": "municipal",
         "in_post_since": "2024-09-01", "retirement_date": None, "status": "left", "version": 3},
        {"staff_no": "T009", "name": "周杰", "home_school_code": "11010502", "home_district_code": "110105",
         "role": "middle_manager", "section": "primary", "subject": None, "backbone_level": "none",
         "in_post_since": "2020-09-01", "retirement_date": None, "status": "active", "version": 1}]
    same_id = await rotation.get(f"/v1/staff/{existing['id']}")
    assert (same_id.json()["staff_no"], same_id.headers["etag"]) == ("T001", '"v3"')
    feed = await feed_items(rotation, 4)
    assert [(c["key"], c["op"]) for c in feed] == [("T001", "create"), ("T001", "update"), ("T001", "update"),
                                                   ("T009", "create")]
    assert (feed[2]["state"]["version"], feed[2]["state"]["home_district_code"]) == (3, "110119")


async def test_json_rows_and_district_scope(partnership, rotation, auth, db_engine):
    await f.chaoyang_with_schools(partnership)
    await f.staff(rotation, staff_no="Y1", name="延庆老师", home_school_code="11011901")
    rows = [
        {"工号": "C1", "姓名": "朝阳一", "学校代码": "11010501", "岗位": "教师", "学段": "小学",
         "现岗位起始日期": "2019-09-01"},
        {"工号": "C2", "姓名": "延庆新", "学校代码": "11011901", "岗位": "教师", "学段": "小学",
         "现岗位起始日期": "2019-09-01"},
        # An existing 延庆 teacher may not be taken over into 朝阳 by a 朝阳 administrator.
        {"工号": "Y1", "姓名": "延庆老师", "学校代码": "11010501", "岗位": "教师", "学段": "小学",
         "现岗位起始日期": "2019-09-01"},
    ]
    chaoyang = auth("district_admin", districts=("110105",))
    response = await rotation.post("/v1/imports/staff", params={"mode": "partial"}, json=rows, headers=chaoyang)
    assert response.status_code == 200, response.text
    assert _errors(response.json()) == [(2, None, "outside your districts"), (3, None, "outside your districts")]
    assert await fetch(db_engine, "select staff_no, home_district_code from rotation.staff order by staff_no") == [
        {"staff_no": "C1", "home_district_code": "110105"}, {"staff_no": "Y1", "home_district_code": "110119"}]
    report = response.json()["id"]
    assert (await rotation.get(f"/v1/imports/{report}", headers=chaoyang)).status_code == 200
    for role in ("viewer", "school_admin"):
        refused = await rotation.post("/v1/imports/staff", json=rows, headers=auth(role))
        assert refused.status_code == 403, role
        assert (await rotation.get(f"/v1/imports/{report}", headers=auth(role))).status_code == 403
    integrator = await rotation.post("/v1/imports/staff", json=rows, headers=auth("integrator"))
    assert integrator.status_code == 200, integrator.text
    # C1 is stored exactly as the file has it (the district import above): unchanged, not updated.
    assert (integrator.json()["inserted"], integrator.json()["updated"], integrator.json()["unchanged"]) == (1, 1, 1)


async def test_partnership_down_is_503_and_nothing_written(settings, token, db_engine):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    app = create_app(settings, transports={"partnership": httpx.MockTransport(refuse)})
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=asgi(app), base_url="http://rotation",
                                     headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"}) as client:
            response = await client.post("/v1/imports/staff", params={"mode": "partial"}, content=CSV_GB18030,
                                         headers=CSV)
    assert response.status_code == 503
    assert response.headers["content-type"] == f.PROBLEM
    assert response.json()["upstream"] == "partnership"
    for table in ("staff", "changes", "imports"):
        assert await fetch(db_engine, f"select count(*) as n from rotation.{table}") == [{"n": 0}], table


class Counting(httpx.AsyncBaseTransport):
    """Partnership in process, each path it is asked for noted in `calls`."""

    def __init__(self, partnership_app, calls: list[str]) -> None:
        self._inner = asgi(partnership_app)
        self._calls = calls

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._calls.append(request.url.path)
        return await self._inner.handle_async_request(request)


async def _import_staff(app, token: str, body: bytes) -> httpx.Response:
    async with httpx.AsyncClient(transport=asgi(app), base_url="http://rotation",
                                 headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"}) as client:
        return await client.post("/v1/imports/staff", params={"mode": "partial"}, content=body, headers=CSV)


async def test_home_schools_come_from_the_school_directory(partnership, partnership_app, settings, token,
                                                           db_engine):
    """The registry is no longer listed whole for an import: the file's home schools are read from
    rotation's school directory, and partnership is asked only about a code the directory lacks."""
    await f.chaoyang_with_schools(partnership)
    calls: list[str] = []

    lines = "".join(f"B{i:03d},老师{i},{'11010501' if i % 2 else '11010502'},教师,小学,数学,无,2015-09-01,,\n"
                    for i in range(40))
    lines += "B999,无校,11010599,教师,小学,数学,无,2015-09-01,,\n"  # row 41: no such school
    app = create_app(settings, transports={"partnership": Counting(partnership_app, calls)})
    async with app.router.lifespan_context(app):
        await synced(db_engine, staff=False)
        calls.clear()
        response = await _import_staff(app, token(), (HEADER + lines).encode("gb18030"))
    assert response.status_code == 200, response.text
    assert (response.json()["inserted"], response.json()["errors"]) == (40, [
        {"row": 41, "field": "home_school_code", "message": "unknown school 11010599"}])
    assert [c for c in calls if c != "/v1/changes"] == ["/v1/schools/11010599"]
    assert await fetch(db_engine, "select home_district_code, count(*) as n from rotation.staff "
                                  "group by 1") == [{"home_district_code": "110105", "n": 40}]


async def test_a_school_the_directory_does_not_hold_yet_is_asked_of_partnership(partnership, partnership_app, settings,
                                                                                token, db_engine):
    """Staged in SQL, a row's home district comes from the directory in the staging statement; a
    school partnership registered after the directory was last fed (its consumer not running
    here) is asked of partnership and filled by the resolve step; an unknown code is an error."""
    await f.chaoyang_with_schools(partnership)
    feeding = create_app(settings, transports={"partnership": asgi(partnership_app)})
    async with feeding.router.lifespan_context(feeding):
        await synced(db_engine, staff=False)
    await f.school(partnership, "11011902", district_code=f.YANQING[0], name="北京市延庆区八达岭小学", primary=200)
    calls: list[str] = []

    lines = ("B1,甲,11010501,教师,小学,数学,无,2015-09-01,,\n"
             "B2,乙,11011902,教师,小学,数学,无,2015-09-01,,\n"
             "B3,丙,11010599,教师,小学,数学,无,2015-09-01,,\n")
    app = create_app(settings.model_copy(update={"feed_consumers": False}),
                     transports={"partnership": Counting(partnership_app, calls)})
    async with app.router.lifespan_context(app):
        response = await _import_staff(app, token(), (HEADER + lines).encode())
    assert response.status_code == 200, response.text
    assert (response.json()["inserted"], response.json()["errors"]) == (2, [
        {"row": 3, "field": "home_school_code", "message": "unknown school 11010599"}])
    assert sorted(calls) == ["/v1/schools/11010599", "/v1/schools/11011902"]
    assert await fetch(db_engine, "select staff_no, home_district_code from rotation.staff order by staff_no") == [
        {"staff_no": "B1", "home_district_code": "110105"}, {"staff_no": "B2", "home_district_code": "110119"}]


async def test_large_file_runs_as_a_job(partnership, partnership_app, rotation, rotation_app, settings, db_engine):
    await f.chaoyang_with_schools(partnership)
    rotation_app.state.settings = rotation_app.state.settings.model_copy(update={"import_sync_rows": 3})
    lines = "".join(f"J{i},老师{i},11010501,教师,小学,数学,无,2015-09-01,,\n" for i in range(10))
    response = await rotation.post("/v1/imports/staff", content=(HEADER + lines).encode(), headers=CSV)
    assert response.status_code == 202
    job = response.json()
    assert (job["status"], job["total_rows"]) == ("running", 10)
    await run_jobs(settings, partnership=asgi(partnership_app))
    report = (await rotation.get(f"/v1/imports/{job['id']}")).json()
    assert (report["status"], report["inserted"], report["processed_rows"]) == ("completed", 10, 10)
    assert await fetch(db_engine, "select count(*) as n from rotation.staff where home_district_code = '110105'"
                       ) == [{"n": 10}]


async def test_unknown_import_404(rotation):
    missing = await rotation.get("/v1/imports/staff.nope")
    assert missing.status_code == 404
    assert missing.json()["type"] == "urn:spp:problem:import-not-found"


async def test_an_integrator_limited_to_districts_imports_only_there(partnership, rotation, auth, db_engine):
    await f.chaoyang_with_schools(partnership)
    await f.staff(rotation, staff_no="Y1", name="延庆老师", home_school_code="11011901")
    rows = [
        {"工号": "C1", "姓名": "朝阳一", "学校代码": "11010501", "岗位": "教师", "学段": "小学",
         "现岗位起始日期": "2019-09-01"},
        {"工号": "Y1", "姓名": "延庆老师改", "学校代码": "11011901", "岗位": "教师", "学段": "小学",
         "现岗位起始日期": "2019-09-01"},
        {"工号": "Y2", "姓名": "延庆新", "学校代码": "11011901", "岗位": "教师", "学段": "小学",
         "现岗位起始日期": "2019-09-01"},
    ]
    stored = "select staff_no, name, home_district_code, version from rotation.staff order by staff_no"
    before = [{"staff_no": "Y1", "name": "延庆老师", "home_district_code": "110119", "version": 1}]
    chaoyang = auth("integrator", districts=("110105",))
    refused = await rotation.post("/v1/imports/staff", json=rows, headers=chaoyang)
    assert refused.status_code == 422, refused.text
    assert _errors(refused.json()) == [(2, None, "outside your districts"), (3, None, "outside your districts")]
    assert await fetch(db_engine, stored) == before
    partial = await rotation.post("/v1/imports/staff", params={"mode": "partial"}, json=rows, headers=chaoyang)
    assert partial.status_code == 200, partial.text
    assert (partial.json()["inserted"], partial.json()["updated"]) == (1, 0)
    assert await fetch(db_engine, stored) == [
        {"staff_no": "C1", "name": "朝阳一", "home_district_code": "110105", "version": 1}, *before]


async def test_a_file_sent_again_is_unchanged_and_feeds_nothing(partnership, rotation, db_engine):
    """Rows equal to the stored record are reported `unchanged`: no new version, no feed item."""
    await f.chaoyang_with_schools(partnership)
    body = ("staff_no,name,home_school_code,role,section,subject,backbone_level,in_post_since\n"
            "T001,王芳,11010501,teacher,primary,数学,none,2019-09-01\n"
            "T002,张伟,11010502,teacher,junior,,,2020-09-01\n").encode()
    first = await rotation.post("/v1/imports/staff", content=body, headers=CSV)
    assert (first.status_code, first.json()["inserted"], first.json()["updated"], first.json()["unchanged"]) == (
        200, 2, 0, 0)
    before = await fetch(db_engine, "select staff_no, version, updated_at from rotation.staff order by staff_no")
    again = await rotation.post("/v1/imports/staff", content=body, headers=CSV)
    assert again.status_code == 200, again.text
    assert (again.json()["status"], again.json()["valid_rows"], again.json()["inserted"], again.json()["updated"],
            again.json()["unchanged"]) == ("completed", 2, 0, 0, 2)
    assert await fetch(db_engine, "select staff_no, version, updated_at from rotation.staff order by staff_no") == before
    changed = body.replace("张伟,11010502,teacher,junior,,".encode(), "张伟,11010502,teacher,junior,物理,".encode())
    third = await rotation.post("/v1/imports/staff", content=changed, headers=CSV)
    assert (third.json()["inserted"], third.json()["updated"], third.json()["unchanged"]) == (0, 1, 1)
    assert [(c["key"], c["op"]) for c in await feed_items(rotation, 3)] == [
        ("T001", "create"), ("T002", "create"), ("T002", "update")]
    assert await fetch(db_engine, "select staff_no, subject, version from rotation.staff order by staff_no") == [
        {"staff_no": "T001", "subject": "数学", "version": 1}, {"staff_no": "T002", "subject": "物理", "version": 2}]


async def test_a_staff_no_stored_by_a_concurrent_writer_during_the_merge_is_updated(partnership, rotation, db_engine):
    """New staff go in by a plain INSERT; a writer that stores one of their staff_nos while it runs
    makes the merge fall back to the upsert: the concurrent record is updated, nothing is stored
    twice, and the feed has one create per new person and the update."""
    await f.chaoyang_with_schools(partnership)
    body = ("staff_no,name,home_school_code,role,section,subject,backbone_level,in_post_since\n"
            "T001,王芳,11010501,teacher,primary,数学,none,2019-09-01\n"
            "T002,张伟,11010502,teacher,junior,物理,none,2020-09-01\n").encode()
    response = await against_an_uncommitted_write(
        db_engine,
        "INSERT INTO rotation.staff (id, staff_no, name, home_school_code, home_district_code, role, section, "
        "in_post_since) VALUES (gen_random_uuid(), 'T002', '张伟', '11010502', '110105', 'teacher', 'junior', "
        "'2020-09-01')", {}, rotation.post("/v1/imports/staff", content=body, headers=CSV))
    assert response.status_code == 200, response.text
    assert (response.json()["inserted"], response.json()["updated"], response.json()["unchanged"]) == (1, 1, 0)
    assert await fetch(db_engine, "select staff_no, subject, version from rotation.staff order by staff_no") == [
        {"staff_no": "T001", "subject": "数学", "version": 1}, {"staff_no": "T002", "subject": "物理", "version": 2}]
    feed = await feed_items(rotation, 2)
    assert [(c["key"], c["op"], c["state"]["subject"]) for c in feed] == [("T001", "create", "数学"),
                                                                          ("T002", "update", "物理")]


async def test_new_staff_feed_their_stored_rows(partnership, rotation, db_engine):
    """The create of each new person carries the row as stored (its id, version, timestamps)."""
    await f.chaoyang_with_schools(partnership)
    body = ("staff_no,name,home_school_code,role,section,subject,backbone_level,in_post_since\n"
            "T001,王芳,11010501,teacher,primary,数学,none,2019-09-01\n").encode()
    response = await rotation.post("/v1/imports/staff", content=body, headers=CSV)
    assert (response.status_code, response.json()["inserted"]) == (200, 1)
    stored = await fetch(db_engine, "select to_jsonb(t) as state from rotation.staff t")
    assert [(c["key"], c["op"], c["state"]) for c in await feed_items(rotation, 1)] == [
        ("T001", "create", stored[0]["state"])]


async def test_a_file_postgresql_cannot_parse_is_read_by_python(partnership, rotation, db_engine):
    """A row with a cell more than the header makes COPY refuse the file; Python's reader takes it
    (the extra cell ignored, as before), in the same transaction, nothing staged twice."""
    await f.chaoyang_with_schools(partnership)
    body = ("staff_no,name,home_school_code,role,section,subject,backbone_level,in_post_since\n"
            "T001,王芳,11010501,teacher,primary,数学,none,2019-09-01,多余\n"
            "T002,张伟,11010502,teacher,junior,,,2020-09-01\n").encode()
    response = await rotation.post("/v1/imports/staff", content=body, headers=CSV)
    assert response.status_code == 200, response.text
    assert (response.json()["total_rows"], response.json()["inserted"], response.json()["errors"]) == (2, 2, [])
    assert await fetch(db_engine, "select staff_no, subject from rotation.staff order by staff_no") == [
        {"staff_no": "T001", "subject": "数学"}, {"staff_no": "T002", "subject": None}]


async def test_an_import_whose_database_connection_dies_mid_staging_is_retried_and_stored_once(
        partnership, partnership_app, rotation, rotation_app, settings, db_engine, monkeypatch):
    """The job's PostgreSQL backend is terminated while its file is being staged (in SQL): that
    attempt fails with nothing written, the job is retried, and the second attempt stores every
    row once, with one feed row each."""
    from services.common import import_sql

    await f.chaoyang_with_schools(partnership)
    rotation_app.state.settings = rotation_app.state.settings.model_copy(update={"import_sync_rows": 3})
    lines = "".join(f"K{i:05d},老师{i},11010501,教师,小学,数学,无,2015-09-01,,\n" for i in range(1, 1201))
    response = await rotation.post("/v1/imports/staff", content=(HEADER + lines).encode(), headers=CSV)
    assert response.status_code == 202
    job = response.json()
    terminated: list[int] = []
    duplicates = import_sql._duplicates

    async def dying(raw, spec):
        if not terminated:  # the first attempt: its backend goes away under it
            terminated.append(raw.get_server_pid())
            async with db_engine.connect() as other:
                await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": terminated[0]})
        return await duplicates(raw, spec)

    monkeypatch.setattr(import_sql, "_duplicates", dying)
    await run_jobs(settings.model_copy(update={"job_retry_seconds": 0}), partnership=asgi(partnership_app))
    report = (await rotation.get(f"/v1/imports/{job['id']}")).json()
    assert len(terminated) == 1
    assert (report["status"], report["total_rows"], report["inserted"], report["errors"]) == (
        "completed", 1200, 1200, [])
    assert await fetch(db_engine, "select count(*) as n, count(distinct staff_no) as keys, min(staff_no) as first, "
                                  "max(staff_no) as last from rotation.staff") == [
        {"n": 1200, "keys": 1200, "first": "K00001", "last": "K01200"}]
    assert await feed_count(db_engine, "rotation") == 1200
    # Stored once, a thousand ids to an entry (rows 1–1,000, then 1,001–1,200).
    assert await fetch(db_engine, "select cardinality(ids) as n from rotation.changes where entity = 'staff' "
                                  "order by seq") == [{"n": 1000}, {"n": 200}]
    assert await fetch(db_engine, "select attempts from rotation.imports where id = :id", id=job["id"]) == [
        {"attempts": 2}]
