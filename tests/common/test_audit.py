"""The audit trail in the services (issue 11 item 6): every write records who, what (the changed
fields before and after), the districts and the request id in its own transaction; a failed write
records nothing; an import records exactly one event; events are immutable."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.conftest import fetch
from tests.jobs import run_jobs
from tests.partnership import factories as pf
from tests.rotation import factories as rf

EVENTS = ("select actor, actor_role, entity, key, operation, before, after, details, districts, request_id "
          "from {schema}.audit_events order by seq")
CHAOYANG, YANQING = "110105", "110119"


def headers_of(token, *, sub: str, role: str = "district_admin", districts=(CHAOYANG,), request_id: str) -> dict:
    return {"Authorization": f"Bearer {token(role, districts, sub=sub)}", "X-Request-ID": request_id}


class TestSchool:
    async def test_create_then_update_exact_before_and_after(self, partnership, token, db_engine):
        await pf.district(partnership)
        admin = headers_of(token, sub="li.ming@chaoyang", request_id="req-school-create")
        created = await partnership.post("/v1/schools", headers=admin, json={
            "code": "11010501", "name": "北京市朝阳区实验小学", "district_code": CHAOYANG, "stage": "primary",
            "locality": "urban", "primary_enrollment": 1200})
        assert created.status_code == 201, created.text
        updated = await partnership.patch("/v1/schools/11010501", json={"primary_enrollment": 1285, "name": "朝阳实验小学"},
                                          headers={**admin, "X-Request-ID": "req-school-update"})
        assert updated.status_code == 200, updated.text
        events = await fetch(db_engine, EVENTS.format(schema="partnership") + " offset 1")  # after the district's
        assert events == [
            {"actor": "li.ming@chaoyang", "actor_role": "district_admin", "entity": "school", "key": "11010501",
             "operation": "create", "before": None,
             "after": {"code": "11010501", "name": "北京市朝阳区实验小学", "district_code": CHAOYANG,
                       "stage": "primary", "locality": "urban", "primary_enrollment": 1200,
                       "junior_enrollment": 0, "senior_enrollment": 0},
             "details": None, "districts": [CHAOYANG], "request_id": "req-school-create"},
            {"actor": "li.ming@chaoyang", "actor_role": "district_admin", "entity": "school", "key": "11010501",
             "operation": "update", "before": {"name": "北京市朝阳区实验小学", "primary_enrollment": 1200},
             "after": {"name": "朝阳实验小学", "primary_enrollment": 1285},
             "details": None, "districts": [CHAOYANG], "request_id": "req-school-update"},
        ]

    async def test_the_district_event_is_city_admins(self, partnership, db_engine):
        response = await partnership.post("/v1/districts", json={"code": CHAOYANG, "name": "朝阳区"},
                                          headers={"X-Request-ID": "req-district"})
        assert response.status_code == 201
        assert await fetch(db_engine, EVENTS.format(schema="partnership")) == [
            {"actor": "tester", "actor_role": "city_admin", "entity": "district", "key": CHAOYANG,
             "operation": "create", "before": None, "after": {"code": CHAOYANG, "name": "朝阳区"},
             "details": None, "districts": [CHAOYANG], "request_id": "req-district"}]

    @pytest.mark.parametrize("status", [409, 422])
    async def test_a_failed_write_leaves_no_event(self, partnership, db_engine, status):
        await pf.district(partnership)
        await pf.school(partnership, "11010501")
        before = await fetch(db_engine, "select count(*) as n from partnership.audit_events")
        body = {"code": "11010501" if status == 409 else "11010599", "name": "重复", "stage": "primary",
                "locality": "urban", "district_code": CHAOYANG if status == 409 else "119999"}
        response = await partnership.post("/v1/schools", json=body)
        assert response.status_code == status, response.text
        assert await fetch(db_engine, "select count(*) as n from partnership.audit_events") == before == [{"n": 2}]

    async def test_a_pairing_concerns_both_schools_districts(self, partnership, db_engine):
        await pf.district(partnership)
        await pf.district(partnership, YANQING, "延庆区")
        await pf.school(partnership, "11010501")
        await pf.school(partnership, "11011901", district_code=YANQING, locality="rural")
        pairing = await pf.pairing(partnership, "11010501", "11011901", activate=True)
        rows = await fetch(db_engine, "select operation, before, after, districts from partnership.audit_events "
                                      "where entity = 'pairing' order by seq")
        assert [(r["operation"], r["districts"]) for r in rows] == [("create", [CHAOYANG, YANQING]),
                                                                    ("state", [CHAOYANG, YANQING])]
        assert (rows[1]["before"], rows[1]["after"]) == ({"status": "proposed"}, {"status": "active"})
        assert rows[0]["after"]["id"] == pairing["id"]


class TestStaff:
    async def test_create_then_update_exact_before_and_after(self, partnership, rotation, token, db_engine):
        await rf.chaoyang_with_schools(partnership)
        admin = headers_of(token, sub="wang.fang@chaoyang", request_id="req-staff-create")
        created = await rotation.post("/v1/staff", headers=admin, json=rf.staff_body(
            staff_no="T2015001", name="张伟", backbone_level="district"))
        assert created.status_code == 201, created.text
        staff = created.json()
        updated = await rotation.patch(f"/v1/staff/{staff['id']}", json={"backbone_level": "municipal",
                                                                         "subject": "数学"},
                                       headers={**admin, "X-Request-ID": "req-staff-update"})
        assert updated.status_code == 200, updated.text
        assert await fetch(db_engine, EVENTS.format(schema="rotation")) == [
            {"actor": "wang.fang@chaoyang", "actor_role": "district_admin", "entity": "staff", "key": "T2015001",
             "operation": "create", "before": None,
             "after": {"id": staff["id"], "staff_no": "T2015001", "name": "张伟", "home_school_code": "11010501",
                       "home_district_code": CHAOYANG, "role": "teacher", "section": "primary", "subject": "数学",
                       "backbone_level": "district", "in_post_since": "2015-09-01", "retirement_date": None,
                       "status": "active"},
             "details": None, "districts": [CHAOYANG], "request_id": "req-staff-create"},
            # `subject` was sent unchanged: only the fields that changed are kept.
            {"actor": "wang.fang@chaoyang", "actor_role": "district_admin", "entity": "staff", "key": "T2015001",
             "operation": "update", "before": {"backbone_level": "district"}, "after": {"backbone_level": "municipal"},
             "details": None, "districts": [CHAOYANG], "request_id": "req-staff-update"},
        ]

    async def test_a_move_concerns_both_districts(self, partnership, rotation, db_engine):
        await rf.chaoyang_with_schools(partnership)
        staff = await rf.staff(rotation, staff_no="T1")
        moved = await rotation.patch(f"/v1/staff/{staff['id']}", json={"home_school_code": "11011901"})
        assert moved.status_code == 200, moved.text
        rows = await fetch(db_engine, "select before, after, districts from rotation.audit_events "
                                      "where operation = 'update'")
        assert rows == [{"before": {"home_school_code": "11010501", "home_district_code": CHAOYANG},
                         "after": {"home_school_code": "11011901", "home_district_code": YANQING},
                         "districts": [CHAOYANG, YANQING]}]

    async def test_a_failed_write_leaves_no_event(self, partnership, rotation, db_engine):
        await rf.chaoyang_with_schools(partnership)
        await rf.staff(rotation, staff_no="T1")
        duplicate = await rotation.post("/v1/staff", json=rf.staff_body(staff_no="T1"))
        unknown = await rotation.post("/v1/staff", json=rf.staff_body(home_school_code="99999999"))
        assert (duplicate.status_code, unknown.status_code) == (409, 422)
        assert await fetch(db_engine, "select key, operation from rotation.audit_events") == [
            {"key": "T1", "operation": "create"}]


SCHOOLS_CSV = ("code,name,district_code,stage,locality,primary_enrollment\n"
               "11010501,北京市朝阳区实验小学,110105,primary,urban,1200\n"
               "11010502,北京市朝阳区劲松小学,110105,primary,urban,600\n"
               "11011901,北京市延庆区张山营学校,110119,primary,rural,300\n"
               "11999901,某县中心小学,119999,primary,rural,100\n").encode()


class TestImport:
    async def test_one_event_with_exact_counts_and_file(self, partnership, token, db_engine):
        await pf.district(partnership)
        await pf.district(partnership, YANQING, "延庆区")
        await pf.school(partnership, "11010501", primary=1000)
        response = await partnership.post(
            "/v1/imports/schools", params={"mode": "partial"}, content=SCHOOLS_CSV,
            headers={"content-type": "text/csv", "X-Request-ID": "req-import",
                     "Content-Disposition": 'attachment; filename="schools-2024.csv"'})
        assert response.status_code == 200, response.text
        report = response.json()
        assert (report["inserted"], report["updated"], report["rejected_rows"]) == (2, 1, 1)
        events = await fetch(db_engine, EVENTS.format(schema="partnership") + " offset 3")
        assert events == [{
            "actor": "tester", "actor_role": "city_admin", "entity": "schools", "key": report["id"],
            "operation": "import", "before": None, "after": None, "districts": [CHAOYANG, YANQING],
            "request_id": "req-import",
            "details": {"mode": "partial", "total_rows": 4, "valid_rows": 3, "inserted": 2, "updated": 1, "unchanged": 0,
                        "rejected_rows": 1,
                        "file": {"name": "schools-2024.csv", "size": len(SCHOOLS_CSV),
                                 "sha256": hashlib.sha256(SCHOOLS_CSV).hexdigest(), "content_type": "text/csv"}}}]
        # The rows themselves are in the change feed, with actor and request id.
        assert await fetch(db_engine, "select key, op, actor, request_id from partnership.changes "
                                      "where request_id = 'req-import' order by key") == [
            {"key": k, "op": op, "actor": "tester", "request_id": "req-import"}
            for k, op in (("11010501", "update"), ("11010502", "create"), ("11011901", "create"))]

    async def test_a_job_records_one_event_as_its_importer(self, partnership, partnership_app, settings, token,
                                                           db_engine):
        await pf.district(partnership)
        await pf.district(partnership, YANQING, "延庆区")
        partnership_app.state.settings = settings.model_copy(update={"import_sync_rows": 2})
        response = await partnership.post(
            "/v1/imports/schools", params={"mode": "partial"}, content=SCHOOLS_CSV,
            headers={**headers_of(token, sub="li.ming@chaoyang", districts=(CHAOYANG,), request_id="req-job"),
                     "content-type": "text/csv", "Content-Disposition": "attachment; filename=big.csv"})
        assert response.status_code == 202, response.text
        await run_jobs(settings)
        report = (await partnership.get(f"/v1/imports/{response.json()['id']}")).json()
        assert (report["status"], report["inserted"], report["rejected_rows"]) == ("completed", 2, 2)
        assert await fetch(db_engine, EVENTS.format(schema="partnership") + " offset 2") == [{
            "actor": "li.ming@chaoyang", "actor_role": "district_admin", "entity": "schools", "key": report["id"],
            "operation": "import", "before": None, "after": None, "districts": [CHAOYANG],
            "request_id": "req-job",
            "details": {"mode": "partial", "total_rows": 4, "valid_rows": 2, "inserted": 2, "updated": 0, "unchanged": 0,
                        "rejected_rows": 2,
                        "file": {"name": "big.csv", "size": len(SCHOOLS_CSV),
                                 "sha256": hashlib.sha256(SCHOOLS_CSV).hexdigest(), "content_type": "text/csv"}}}]

    async def test_rejected_and_dry_run_imports_leave_no_event(self, partnership, db_engine):
        await pf.district(partnership)
        rejected = await partnership.post("/v1/imports/schools", content=SCHOOLS_CSV,
                                          headers={"content-type": "text/csv"})
        dry = await partnership.post("/v1/imports/schools", params={"dry_run": "true", "mode": "partial"},
                                     content=SCHOOLS_CSV, headers={"content-type": "text/csv"})
        assert (rejected.status_code, dry.status_code) == (422, 200)
        assert await fetch(db_engine, "select entity from partnership.audit_events") == [{"entity": "district"}]


async def test_events_are_immutable(partnership, db_engine):
    await pf.district(partnership)
    for statement in ("update partnership.audit_events set actor = 'someone else'",
                      "delete from partnership.audit_events"):
        with pytest.raises(DBAPIError, match="audit events are immutable"):
            async with db_engine.begin() as conn:
                await conn.execute(text(statement))
    assert await fetch(db_engine, "select actor from partnership.audit_events") == [{"actor": "tester"}]


class TestInternalRoute:
    async def test_scoped_newest_first(self, partnership, auth, token):
        await pf.district(partnership)
        await pf.district(partnership, YANQING, "延庆区")
        await pf.school(partnership, "11010501")
        await pf.school(partnership, "11011901", district_code=YANQING)
        everything = await partnership.get("/v1/internal/audit-events")
        assert everything.status_code == 200
        assert [(e["entity"], e["key"]) for e in everything.json()["items"]] == [
            ("school", "11011901"), ("school", "11010501"), ("district", YANQING), ("district", CHAOYANG)]
        mine = await partnership.get("/v1/internal/audit-events", headers=auth("district_admin", districts=(YANQING,)))
        assert [(e["entity"], e["key"]) for e in mine.json()["items"]] == [("school", "11011901"),
                                                                          ("district", YANQING)]
        other = await partnership.get("/v1/internal/audit-events", params={"district_code": CHAOYANG},
                                      headers={**auth("district_admin", districts=(YANQING,)), "X-Request-ID": "a1"})
        assert (other.status_code, other.json()["type"], other.json()["detail"]) == (
            403, "urn:spp:problem:district-scope", "outside your districts")
        viewer = await partnership.get("/v1/internal/audit-events", headers=auth("viewer"))
        assert [(e["entity"], e["key"]) for e in viewer.json()["items"]] == [
            (e["entity"], e["key"]) for e in everything.json()["items"]]
        refused = await partnership.get("/v1/internal/audit-events", headers=auth("school_admin"))
        assert (refused.status_code, refused.json()["type"]) == (403, "urn:spp:problem:role")
