"""Bulk import of external training hours: GB18030 CSV with Chinese headers, per-row report, both
modes, dry run, idempotent by (source, reference), staff checked against rotation."""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.training.app import create_app
from tests.conftest import asgi, fetch
from tests.feed import feed_count, feed_items, synced
from tests.jobs import run_jobs
from tests.races import against_an_uncommitted_write
from tests.training import factories as f

CSV = {"content-type": "text/csv"}
URL = "/v1/imports/training-hours"
GHOST = "6f1c2a9e-0000-4000-8000-000000000001"  # nobody rotation knows


def _file(world) -> bytes:
    a, b = world.staff[0]["id"], world.staff[1]["id"]
    return (
        "教师编号,姓名,学时,取得日期,来源,凭证编号,备注\n"
        f"{a},王芳,24,2024-11-08,市级平台,PX-0001,\n"            # row 1: good
        f"{b},张伟,2.5,2024年3月5日,市级平台,PX-0002,半天\n"       # row 2: good (a Chinese date)
        f"{GHOST},无名,8,2024-05-01,市级平台,PX-0003,\n"          # row 3: unknown staff
        f"{a},王芳,-4,2024-05-01,市级平台,PX-0004,\n"             # row 4: negative hours
        f"{b},张伟,6,2024-06-01,市级平台,PX-0001,\n"              # row 5: (source, reference) of row 1 again
        f"{a},王芳,6,2024-13-01,市级平台,PX-0005,\n"              # row 6: no 13th month
        f"{a},王芳,3,2024-10-12,studio_session,X-1,\n"           # row 7: reserved source
    ).encode("gb18030")


def _errors(body):
    return [(e["row"], e["field"]) for e in body["errors"]]


async def _stored(db_engine):
    return await fetch(db_engine, "select staff_id::text as staff_id, hours, earned_on::text as earned_on, source, "
                                  "reference, session_id from training.training_hours order by reference")


async def test_all_or_nothing_rejects_with_exact_report(training, world, db_engine):
    response = await training.post(URL, content=_file(world), headers=CSV)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["import_status"], body["kind"], body["total_rows"], body["valid_rows"], body["rejected_rows"]) == (
        "rejected", "training-hours", 7, 2, 5)
    assert _errors(body) == [(3, "staff_id"), (4, "hours"), (5, "source"), (6, "earned_on"), (7, "source")]
    messages = [e["message"] for e in body["errors"]]
    assert messages[0] == f"unknown staff member {GHOST}"
    assert messages[1] == "学时 must be greater than 0"  # the column as the file heads it
    assert messages[2] == "duplicate of row 1 in this file"
    assert messages[4] == "来源: source 'studio_session' is reserved for studio attendance"
    assert await _stored(db_engine) == []
    assert await fetch(db_engine, "select count(*) as n from training.changes") == [{"n": 0}]
    assert body["id"].startswith("training-hours.")
    assert response.headers["location"] == f"/api/v1/imports/{body['id']}"
    saved = await training.get(f"/v1/imports/{body['id']}")
    assert (saved.status_code, saved.json()["status"], _errors(saved.json())) == (200, "rejected", _errors(body))


async def test_partial_keeps_the_good_rows_and_feeds_them(training, world, db_engine):
    response = await training.post(URL, params={"mode": "partial"}, content=_file(world), headers=CSV)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["inserted"], body["updated"], body["rejected_rows"]) == ("completed", 2, 0, 5)
    a, b = world.staff[0]["id"], world.staff[1]["id"]
    assert await _stored(db_engine) == [
        {"staff_id": a, "hours": Decimal("24.00"), "earned_on": "2024-11-08", "source": "市级平台",
         "reference": "PX-0001", "session_id": None},
        {"staff_id": b, "hours": Decimal("2.50"), "earned_on": "2024-03-05", "source": "市级平台",
         "reference": "PX-0002", "session_id": None}]
    feed = await feed_items(training, 2)
    assert [(c["entity"], c["key"], c["op"]) for c in feed] == [
        ("training_credit", "市级平台:PX-0001", "create"), ("training_credit", "市级平台:PX-0002", "create")]
    # The same shape as the single post's feed rows and its answer (hours as a JSON number).
    credit = (await training.get("/v1/training-hours", params={"staff_id": b})).json()["items"][0]
    state = feed[1]["state"]
    assert {k: v for k, v in state.items() if k != "created_at"} == {
        k: v for k, v in credit.items() if k != "created_at"}
    assert state["hours"] == 2.5
    summary = (await training.get("/v1/training-hours/summary", params={"staff_id": b, "as_of": "2024-12-31"})).json()
    assert summary["by_source"] == {"市级平台": 2.5}


async def test_reimporting_the_same_file_is_idempotent(training, world, db_engine):
    first = await training.post(URL, params={"mode": "partial"}, content=_file(world), headers=CSV)
    assert first.json()["inserted"] == 2
    again = await training.post(URL, params={"mode": "partial"}, content=_file(world), headers=CSV)
    assert again.status_code == 200
    assert (again.json()["inserted"], again.json()["updated"], again.json()["rejected_rows"]) == (0, 0, 5)
    assert len(await _stored(db_engine)) == 2
    assert await feed_count(db_engine, "training") == 2
    # All-or-nothing, only the good rows: still nothing new.
    good = b"\n".join(_file(world).split(b"\n")[:3]) + b"\n"
    once_more = await training.post(URL, content=good, headers=CSV)
    assert (once_more.status_code, once_more.json()["inserted"], once_more.json()["errors"]) == (200, 0, [])


async def test_an_existing_key_with_other_facts_is_a_row_error(training, world, db_engine):
    a, b = world.staff[0]["id"], world.staff[1]["id"]
    await f.credit(training, a, hours="8", earned_on="2024-05-01", source="市级平台", reference="PX-1")
    rows = [
        {"staff_id": a, "hours": "8.00", "earned_on": "2024-05-01", "source": "市级平台", "reference": "PX-1"},  # same
        {"staff_id": a, "hours": "9", "earned_on": "2024-05-01", "source": "市级平台", "reference": "PX-1"},
        {"staff_id": b, "hours": "8", "earned_on": "2024-05-02", "source": "市级平台", "reference": "PX-1"},
        {"staff_id": b, "hours": "1", "earned_on": "2024-05-02", "source": "区级平台", "reference": "PX-1"},  # new
    ]
    # The file's own duplicate rule would catch two rows with one key: one file per conflicting row.
    for row, expected in ((rows[1], "hours"), (rows[2], "staff_id, earned_on")):
        response = await training.post(URL, json=[row], params={"mode": "partial"})
        assert response.status_code == 200
        body = response.json()
        assert (body["inserted"], body["rejected_rows"]) == (0, 1)
        assert body["errors"] == [{"row": 1, "field": "reference", "message":
                                   f"a credit with source '市级平台' and reference 'PX-1' already exists with a "
                                   f"different {expected}"}]
    response = await training.post(URL, json={"rows": [rows[0], rows[3]]})
    assert response.status_code == 200
    assert (response.json()["inserted"], response.json()["updated"], response.json()["errors"]) == (1, 0, [])
    assert {(r["source"], r["staff_id"], r["hours"]) for r in await _stored(db_engine)} == {
        ("区级平台", b, Decimal("1.00")), ("市级平台", a, Decimal("8.00"))}


async def test_dry_run_writes_nothing(training, world, db_engine):
    response = await training.post(URL, params={"dry_run": "true"}, content=_file(world), headers=CSV)
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["valid_rows"], response.json()["inserted"]) == (
        "validated", 2, 0)
    assert await _stored(db_engine) == []
    assert await fetch(db_engine, "select count(*) as n from training.changes") == [{"n": 0}]


async def test_utf8_bom_and_english_headers(training, world, db_engine):
    body = ("\ufeffstaff_id,hours,earned_on,source,reference\n"
            f"{world.staff[2]['id']},12,2024/9/1,national_platform,N-1\n").encode()
    response = await training.post(URL, content=body, headers=CSV)
    assert (response.status_code, response.json()["inserted"]) == (200, 1)
    assert [(r["earned_on"], r["reference"]) for r in await _stored(db_engine)] == [("2024-09-01", "N-1")]


async def test_staff_no_longer_active_is_still_known(training, rotation, world, db_engine):
    retired = world.staff[0]
    patched = await rotation.patch(f"/v1/staff/{retired['id']}", json={"status": "retired"})
    assert patched.status_code == 200, patched.text
    response = await training.post(URL, json=[{"staff_id": retired["id"], "hours": "4", "earned_on": "2023-05-01",
                                               "source": "市级平台", "reference": "OLD-1"}])
    assert (response.status_code, response.json()["inserted"]) == (200, 1), response.text


async def test_district_admins_import_for_their_staff_only(training, world, auth, db_engine):
    yanqing, haidian = world.staff[0]["id"], world.staff[3]["id"]  # home districts 110119 and 110108
    rows = [{"staff_id": yanqing, "hours": "4", "earned_on": "2024-05-01", "source": "区级平台", "reference": "Y-1"},
            {"staff_id": haidian, "hours": "4", "earned_on": "2024-05-01", "source": "区级平台", "reference": "H-1"}]
    response = await training.post(URL, json=rows, params={"mode": "partial"},
                                   headers=auth("district_admin", districts=("110119",)))
    assert response.status_code == 200
    assert (response.json()["inserted"], response.json()["errors"]) == (1, [
        {"row": 2, "field": None, "message": f"staff member {haidian} is outside your districts"}])
    assert [r["reference"] for r in await _stored(db_engine)] == ["Y-1"]


async def test_who_may_import_and_read_reports(training, world, auth):
    body = json.dumps([{"staff_id": world.staff[0]["id"], "hours": "4", "earned_on": "2024-05-01",
                        "source": "区级平台", "reference": "R-1"}])
    for headers in (auth("viewer"), auth("school_admin", districts=("110119",), schools=("11011901",))):
        response = await training.post(URL, content=body, headers={**headers, "content-type": "application/json"})
        assert response.status_code == 403
    report = await training.post(URL, content=body, headers={**auth("integrator"), "content-type": "application/json"})
    assert report.status_code == 200
    assert (await training.get(f"/v1/imports/{report.json()['id']}", headers=auth("viewer"))).status_code == 403
    assert (await training.get("/v1/imports/training-hours.nope")).status_code == 404


async def test_bad_files_are_422(training, world):
    assert (await training.post(URL, content=b"", headers=CSV)).status_code == 422
    assert (await training.post(URL, content=b"{not json", headers={"content-type": "application/json"})
            ).status_code == 422


@pytest.fixture
async def rotation_down(settings, token):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    app = create_app(settings, transports={"rotation": httpx.MockTransport(refuse)})
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=asgi(app), base_url="http://training",
                                     headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"}) as client:
            yield client


async def test_rotation_down_is_503_and_nothing_is_written(rotation_down, db_engine):
    body = f"staff_id,hours,earned_on,source,reference\n{uuid.uuid4()},4,2024-05-01,区级平台,D-1\n".encode()
    response = await rotation_down.post(URL, content=body, headers=CSV)
    assert response.status_code == 503
    assert response.json()["type"] == "urn:spp:problem:upstream-unavailable"
    assert await fetch(db_engine, "select count(*) as n from training.training_hours") == [{"n": 0}]
    assert await fetch(db_engine, "select count(*) as n from training.imports") == [{"n": 0}]


class CountingTransport(httpx.AsyncBaseTransport):
    """Counts rotation calls and the most in flight at once."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner, self.paths, self.requests, self.in_flight, self.peak = inner, [], [], 0, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        self.requests.append(request)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(0.01)  # let the other lookups start, so the peak is real
            return await self.inner.handle_async_request(request)
        finally:
            self.in_flight -= 1


async def test_staff_come_from_the_directory_and_only_misses_are_asked(settings, rotation_app, token, world,
                                                                        db_engine):
    from services.training.imports import LOOKUP_CONCURRENCY

    counting = CountingTransport(asgi(rotation_app))
    app = create_app(settings, transports={"rotation": counting})
    ghosts = [str(uuid.uuid4()) for _ in range(20)]
    known = [s["id"] for s in world.staff]
    rows = [{"staff_id": s, "hours": "1", "earned_on": "2024-05-01", "source": "区级平台", "reference": f"B-{i}"}
            for i, s in enumerate(known + ghosts + known)]
    async with app.router.lifespan_context(app):
        await synced(db_engine, schools=False)
        async with httpx.AsyncClient(transport=asgi(app), base_url="http://training",
                                     headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"}) as client:
            counting.paths.clear()
            counting.peak = 0
            response = await client.post(URL, json=rows, params={"mode": "partial"})
    assert response.status_code == 200
    assert (response.json()["inserted"], response.json()["rejected_rows"]) == (12, 20)
    # Known staff come from the local directory; only the ids it does not hold are asked, one by one
    # and a few at a time. No list of staff (the whole city's active staff) is fetched any more.
    asked = [p for p in counting.paths if p != "/v1/changes"]
    assert sorted(asked) == sorted(f"/v1/staff/{g}" for g in ghosts)
    assert 1 < counting.peak <= LOOKUP_CONCURRENCY + 1  # + the feed consumer's poll


async def test_a_large_file_runs_as_a_job_with_the_same_staff_checks(settings, rotation_app, token, world,
                                                                    db_engine):
    app = create_app(settings.model_copy(update={"import_sync_rows": 1}), transports={"rotation": asgi(rotation_app)})
    rows = [{"staff_id": world.staff[0]["id"], "hours": "2", "earned_on": "2024-05-01", "source": "区级平台",
             "reference": "J-1"},
            {"staff_id": GHOST, "hours": "2", "earned_on": "2024-05-01", "source": "区级平台", "reference": "J-2"}]
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=asgi(app), base_url="http://training",
                                     headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"}) as client:
            started = await client.post(URL, json=rows, params={"mode": "partial"})
            assert (started.status_code, started.json()["status"]) == (202, "running")
            await run_jobs(settings, rotation=asgi(rotation_app))
            report = (await client.get(f"/v1/imports/{started.json()['id']}")).json()
    assert (report["status"], report["inserted"], report["errors"]) == (
        "completed", 1, [{"row": 2, "field": "staff_id", "message": f"unknown staff member {GHOST}"}])
    assert [r["reference"] for r in await _stored(db_engine)] == ["J-1"]


async def test_two_imports_racing_for_one_key_store_one_credit_and_report_the_other(gated, world, db_engine):
    """Both imports pass their checks before either commits; the loser's merge skips its row. The
    recheck after the merge makes that a reported conflict instead of a silent skip."""
    member = world.staff[0]["id"]

    def one_row(hours: str) -> bytes:
        return f"教师编号,学时,取得日期,来源,凭证编号\n{member},{hours},2024-11-08,市级平台,RACE-1\n".encode()

    gated.gate.arm(2)  # both requests leave the staff lookup together
    first, second = await asyncio.gather(gated.client.post(URL, content=one_row("24"), headers=CSV),
                                         gated.client.post(URL, content=one_row("30"), headers=CSV))
    statuses = sorted((first.status_code, second.status_code))
    assert statuses in ([200, 409], [200, 422])  # the loser saw the winner late (409) or early (422)
    loser = first if first.status_code != 200 else second
    winner_hours = "24" if first.status_code == 200 else "30"
    assert loser.json()["errors"][0]["field"] == "reference"
    stored = await _stored(db_engine)
    assert [(row["reference"], row["hours"]) for row in stored] == [("RACE-1", Decimal(winner_hours))]


async def test_staff_no_resolves_through_the_staff_directory(training, world, auth, db_engine):
    """Provincial systems know 工号, not our UUIDs: staff_no resolves to the staff member in SQL
    over the staged rows, through training's own staff directory."""
    await synced(db_engine, schools=False)
    s = world.staff
    body = ("工号,教师编号,学时,取得日期,来源,凭证编号\n"
            f"{s[0]['staff_no']},,24,2024-11-08,省平台,SN-1\n"              # row 1: by staff_no
            "T9999999,,8,2024-11-08,省平台,SN-2\n"                          # row 2: nobody has it
            f"{s[1]['staff_no']},{s[1]['id']},6,2024-11-08,省平台,SN-3\n"   # row 3: both, agreeing
            f"{s[0]['staff_no']},{s[2]['id']},6,2024-11-08,省平台,SN-4\n"   # row 4: both, disagreeing
            ",,6,2024-11-08,省平台,SN-5\n"                                  # row 5: neither
            ).encode("gb18030")
    response = await training.post(URL, params={"mode": "partial"}, content=body, headers=CSV)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["inserted"], report["rejected_rows"]) == (2, 3)
    assert report["errors"] == [
        {"row": 2, "field": "staff_no", "message": "unknown staff_no 'T9999999'"},
        {"row": 4, "field": "staff_no", "message": f"staff_no '{s[0]['staff_no']}' is not staff member {s[2]['id']}"},
        {"row": 5, "field": None, "message": "give staff_id or staff_no (工号)"}]
    assert [(r["reference"], r["staff_id"], r["hours"]) for r in await _stored(db_engine)] == [
        ("SN-1", s[0]["id"], Decimal("24.00")), ("SN-3", s[1]["id"], Decimal("6.00"))]
    # The feed carries the resolved staff id.
    feed = [{"key": c["key"], "staff_id": c["state"]["staff_id"]} for c in await feed_items(training, 2)]
    assert feed == [{"key": "省平台:SN-1", "staff_id": s[0]["id"]}, {"key": "省平台:SN-3", "staff_id": s[1]["id"]}]

    # A district administrator of 延庆 (staff 0–2) may not credit 海淀's staff 3 by staff_no either.
    scoped = await training.post(URL, json=[
        {"staff_no": s[3]["staff_no"], "hours": "1", "earned_on": "2024-05-01", "source": "省平台", "reference": "SN-6"},
        {"staff_no": s[2]["staff_no"], "hours": "1", "earned_on": "2024-05-01", "source": "省平台", "reference": "SN-7"}],
        params={"mode": "partial"}, headers=auth("district_admin", districts=("110119",)))
    assert scoped.status_code == 200
    assert (scoped.json()["inserted"], scoped.json()["errors"]) == (1, [
        {"row": 1, "field": None, "message": f"staff member {s[3]['id']} is outside your districts"}])
async def test_an_integrator_limited_to_districts_imports_for_their_staff_only(training, world, auth, db_engine):
    yanqing, haidian = world.staff[0]["id"], world.staff[3]["id"]  # home districts 110119 and 110108
    rows = [{"staff_id": yanqing, "hours": "4", "earned_on": "2024-05-01", "source": "区级平台", "reference": "Y-1"},
            {"staff_id": haidian, "hours": "4", "earned_on": "2024-05-01", "source": "区级平台", "reference": "H-1"}]
    integrator = auth("integrator", districts=("110119",))
    refused = await training.post(URL, json=rows, headers=integrator)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"] == [
        {"row": 2, "field": None, "message": f"staff member {haidian} is outside your districts"}]
    assert await _stored(db_engine) == []
    partial = await training.post(URL, json=rows, params={"mode": "partial"}, headers=integrator)
    assert (partial.status_code, partial.json()["inserted"], partial.json()["rejected_rows"]) == (200, 1, 1)
    assert await _stored(db_engine) == [{"staff_id": yanqing, "hours": Decimal("4.00"), "earned_on": "2024-05-01",
                                         "source": "区级平台", "reference": "Y-1", "session_id": None}]


async def _post_while_px1_is_stored(training, world, db_engine, hours: int):
    """PX-1 and PX-2 posted while another transaction stores PX-1 (8 hours, as the file has it, or
    other hours) and commits during the merge."""
    a, b = world.staff[0]["id"], world.staff[1]["id"]
    rows = [{"staff_id": a, "hours": "8", "earned_on": "2024-05-01", "source": "市级平台", "reference": "PX-1"},
            {"staff_id": b, "hours": "2", "earned_on": "2024-05-02", "source": "市级平台", "reference": "PX-2"}]
    response = await against_an_uncommitted_write(
        db_engine,
        "INSERT INTO training.training_hours (id, staff_id, hours, earned_on, source, reference) "
        "VALUES (gen_random_uuid(), :a, :hours, '2024-05-01', '市级平台', 'PX-1')", {"a": a, "hours": hours},
        training.post(URL, json=rows))
    return response, a, b


async def test_a_key_stored_by_a_concurrent_writer_during_the_merge_is_unchanged(training, world, db_engine):
    """The merge first inserts without ON CONFLICT; a writer that stores one of the file's keys
    while it runs makes it fall back to the ON CONFLICT merge: same report, nothing twice."""
    response, a, b = await _post_while_px1_is_stored(training, world, db_engine, 8)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["valid_rows"], body["inserted"], body["updated"], body["unchanged"],
            body["errors"]) == ("completed", 2, 1, 0, 1, [])
    assert [(r["reference"], r["staff_id"], r["hours"]) for r in await _stored(db_engine)] == [
        ("PX-1", a, Decimal("8.00")), ("PX-2", b, Decimal("2.00"))]
    assert await fetch(db_engine, "select key, op from training.changes where entity = 'training_credit' "
                                  "order by seq") == [{"key": "市级平台:PX-2", "op": "create"}]


async def test_a_differing_credit_stored_by_a_concurrent_writer_during_the_merge_is_a_conflict(
        training, world, db_engine):
    """The keys the ledger held were looked up once, while staging; a writer that stores one of
    the file's keys with other facts after that is found by the check made again after the merge:
    409, nothing of the file written."""
    response, _, _ = await _post_while_px1_is_stored(training, world, db_engine, 9)
    assert response.status_code == 409, response.text
    assert response.json()["errors"] == [
        {"row": 1, "field": "reference",
         "message": "a credit with source '市级平台' and reference 'PX-1' already exists with a different hours"}]
    assert [(r["reference"], r["hours"]) for r in await _stored(db_engine)] == [("PX-1", Decimal("9.00"))]
    assert await feed_count(db_engine, "training") == 0


async def test_staff_numbers_the_directory_lacks_are_asked_of_rotation_in_batches(
        settings, rotation_app, token, world, db_engine, monkeypatch):
    """A directory behind rotation (here: no consumer at all, so it is empty) must not refuse a
    provincial file: the numbers it lacks are asked of rotation, a few to a call, a few calls at a
    time, and only so many per import; the rest are row errors."""
    from services.training import imports

    monkeypatch.setattr(imports, "STAFF_NOS_PER_CALL", 2)
    monkeypatch.setattr(imports, "LOOKUP_CONCURRENCY", 2)
    monkeypatch.setattr(imports, "MAX_STAFF_NOS_ASKED", 7)
    counting = CountingTransport(asgi(rotation_app))
    app = create_app(settings.model_copy(update={"feed_consumers": False}), transports={"rotation": counting})
    s = world.staff
    numbers = sorted(["T0000000", *(m["staff_no"] for m in s)])  # T0000000: nobody's; asked, sorts first
    rows = [{"staff_no": m["staff_no"], "hours": "2", "earned_on": "2024-05-01", "source": "省平台",
             "reference": f"N-{i}"} for i, m in enumerate(s)]
    rows += [{"staff_no": "T0000000", "hours": "1", "earned_on": "2024-05-01", "source": "省平台", "reference": "N-6"},
             {"staff_no": "Z9999999", "hours": "1", "earned_on": "2024-05-01", "source": "省平台", "reference": "N-7"},
             {"staff_no": s[0]["staff_no"], "hours": "3", "earned_on": "2024-06-01", "source": "省平台",
              "reference": "N-8"}]
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=asgi(app), base_url="http://training",
                                     headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"}) as client:
            response = await client.post(URL, json=rows, params={"mode": "partial"})
    assert await fetch(db_engine, "select count(*) as n from training.staff_directory") == [{"n": 0}]
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["inserted"], report["rejected_rows"]) == (7, 2)
    assert report["errors"] == [
        {"row": 7, "field": "staff_no", "message": "unknown staff_no 'T0000000'"},
        {"row": 8, "field": "staff_no", "message": "staff_no 'Z9999999' is not in the staff directory yet"}]
    # Seven distinct numbers asked (Z9999999, the eighth, is past the cap), two to a call, two calls at once.
    asked = [(c.url.path, c.url.params.get_list("staff_no")) for c in counting.requests]
    assert asked == [("/v1/internal/staff", numbers[i:i + 2]) for i in range(0, 7, 2)]
    assert counting.peak == 2
    assert [(r["reference"], r["staff_id"], r["hours"]) for r in await _stored(db_engine)] == [
        *((f"N-{i}", m["id"], Decimal("2.00")) for i, m in enumerate(s)), ("N-8", s[0]["id"], Decimal("3.00"))]


async def test_a_staff_no_the_directory_lacks_with_rotation_down_is_503_and_nothing_is_written(
        rotation_down, db_engine):
    body = "工号,学时,取得日期,来源,凭证编号\nT20180001,4,2024-05-01,省平台,D-1\n".encode()
    response = await rotation_down.post(URL, content=body, headers=CSV)
    assert response.status_code == 503
    assert response.json()["type"] == "urn:spp:problem:upstream-unavailable"
    assert response.json()["upstream"] == "rotation"
    assert await fetch(db_engine, "select count(*) as n from training.training_hours") == [{"n": 0}]
    assert await fetch(db_engine, "select count(*) as n from training.imports") == [{"n": 0}]
    assert await fetch(db_engine, "select count(*) as n from training.changes") == [{"n": 0}]


async def _mark_stored_plan(db_engine, references: list[str]) -> tuple[str, list[int]]:
    """EXPLAIN ANALYZE of MARK_STORED over staged credits with these references (source 市级平台),
    and the rows it marked."""
    from services.common.import_stage import create_staged
    from services.training.imports import MARK_STORED, TRAINING_HOURS

    async with db_engine.connect() as connection:
        session = AsyncSession(bind=connection, expire_on_commit=False)
        await create_staged(session, TRAINING_HOURS)
        await session.execute(text(
            "INSERT INTO staged (row_no, staff_id, hours, earned_on, source, reference) "
            "SELECT n, gen_random_uuid(), 1, date '2024-05-01', '市级平台', r "
            "FROM unnest(CAST(:refs AS text[])) WITH ORDINALITY AS f(r, n)"), {"refs": references})
        plan = "\n".join(row[0] for row in (await session.execute(text("EXPLAIN (ANALYZE, COSTS OFF) " + MARK_STORED))))
        marked = [row[0] for row in await session.execute(text("SELECT row_no FROM staged WHERE stored ORDER BY row_no"))]
        await session.rollback()
    return plan, marked


async def test_a_file_of_new_references_skips_the_lookup_of_each_key(training, world, db_engine):
    """Stored: PX-0001 and PX-0002. A file numbered on from them (PX-0003 …) cannot hold a stored
    key: one range probe, and the per-row lookups never run. A file whose range covers a stored
    reference is looked up row by row, and the stored key is marked."""
    a = world.staff[0]["id"]
    rows = [{"staff_id": a, "hours": "1", "earned_on": "2024-05-01", "source": "市级平台", "reference": f"PX-000{i}"}
            for i in (1, 2)]
    assert (await training.post(URL, json=rows)).json()["inserted"] == 2
    plan, marked = await _mark_stored_plan(db_engine, ["PX-0003", "PX-0004", "PX-0009"])
    assert marked == []
    assert "Seq Scan on staged s (never executed)" in plan, plan
    plan, marked = await _mark_stored_plan(db_engine, ["PX-0000", "PX-0002", "PX-0005"])
    assert marked == [2]
    assert "Seq Scan on staged s (actual" in plan, plan
