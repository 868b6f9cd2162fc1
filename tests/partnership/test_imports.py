"""Bulk import of schools: GB18030 CSV with Chinese headers, per-row report, both modes, dry run."""

from tests.conftest import fetch
from tests.jobs import run_jobs
from tests.partnership import factories as f

GOOD_AND_BAD = (
    "学校代码,学校名称,区县代码,学段,城乡类别,小学在校生数,初中在校生数,备注\n"
    "11010501,北京市朝阳区实验小学,110105,小学,城区,1200,0,\n"       # row 1: good
    "11010502,北京市朝阳区第二中学,110105,初中,城区,0,800,\n"        # row 2: good
    "11999901,某县中心小学,119999,小学,乡村,100,0,\n"              # row 3: unknown district
    "11010503,北京市朝阳区乡村小学,110105,小学,乡村,-5,0,\n"        # row 4: negative enrollment
    "11010501,北京市朝阳区实验小学(重复),110105,小学,城区,1,0,\n"   # row 5: duplicate code in file
    "11010504,北京市朝阳区某校,110105,大学,城区,0,0,\n"            # row 6: unknown stage
)
CSV_GB18030 = GOOD_AND_BAD.encode("gb18030")
CSV_HEADERS = {"content-type": "text/csv"}


def _errors(body):
    return [(e["row"], e["field"]) for e in body["errors"]]


async def test_all_or_nothing_rejects_with_exact_report(partnership, db_engine):
    await f.district(partnership)
    response = await partnership.post("/v1/imports/schools", content=CSV_GB18030, headers=CSV_HEADERS)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["import_status"], body["total_rows"], body["valid_rows"], body["rejected_rows"]) == (
        "rejected", 6, 2, 4)
    assert _errors(body) == [(3, "district_code"), (4, "primary_enrollment"),
                             (5, "code"), (6, "stage")]
    assert body["errors"][0]["message"] == "unknown district 119999"
    assert body["errors"][2]["message"] == "duplicate of row 1 in this file"
    assert await fetch(db_engine, "select count(*) as n from partnership.schools") == [{"n": 0}]
    saved = await partnership.get(f"/v1/imports/{body['id']}")
    assert saved.status_code == 200
    assert saved.json()["status"] == "rejected"


async def test_partial_keeps_good_rows(partnership, db_engine):
    await f.district(partnership)
    response = await partnership.post("/v1/imports/schools", params={"mode": "partial"}, content=CSV_GB18030,
                                      headers=CSV_HEADERS)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["inserted"], body["updated"], body["rejected_rows"]) == ("completed", 2, 0, 4)
    rows = await fetch(db_engine, "select code, name, stage, locality, primary_enrollment, junior_enrollment "
                                  "from partnership.schools order by code")
    assert rows == [
        {"code": "11010501", "name": "北京市朝阳区实验小学", "stage": "primary", "locality": "urban",
         "primary_enrollment": 1200, "junior_enrollment": 0},
        {"code": "11010502", "name": "北京市朝阳区第二中学", "stage": "junior", "locality": "urban",
         "primary_enrollment": 0, "junior_enrollment": 800}]
    feed = await fetch(db_engine, "select entity, key, op from partnership.changes where entity = 'school' "
                                  "order by seq")
    assert feed == [{"entity": "school", "key": "11010501", "op": "create"},
                    {"entity": "school", "key": "11010502", "op": "create"}]


async def test_upsert_by_code_utf8_bom_english_headers(partnership, db_engine):
    await f.district(partnership)
    await f.school(partnership, "S1", primary=10, name="旧名")
    body = ("\ufeffcode,name,district_code,stage,locality,primary_enrollment\n"
            "S1,新名,110105,primary,rural,20\nS2,二校,110105,junior,township,0\n").encode("utf-8")
    response = await partnership.post("/v1/imports/schools", content=body, headers=CSV_HEADERS)
    assert response.status_code == 200
    assert (response.json()["inserted"], response.json()["updated"]) == (1, 1)
    rows = await fetch(db_engine, "select code, name, locality, primary_enrollment, version from partnership.schools "
                                  "order by code")
    assert rows == [{"code": "S1", "name": "新名", "locality": "rural", "primary_enrollment": 20, "version": 2},
                    {"code": "S2", "name": "二校", "locality": "township", "primary_enrollment": 0, "version": 1}]


async def test_dry_run_writes_nothing(partnership, db_engine):
    await f.district(partnership)
    response = await partnership.post("/v1/imports/schools", params={"dry_run": "true"}, content=CSV_GB18030,
                                      headers=CSV_HEADERS)
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["valid_rows"]) == ("validated", 2)
    assert await fetch(db_engine, "select count(*) as n from partnership.schools") == [{"n": 0}]


async def test_json_body_and_scope(partnership, auth, db_engine):
    await f.district(partnership)
    await f.district(partnership, *f.YANQING)
    rows = [{"code": "Y1", "name": "延庆一校", "district_code": "110119", "stage": "primary", "locality": "rural"},
            {"code": "C1", "name": "朝阳一校", "district_code": "110105", "stage": "primary", "locality": "urban"}]
    admin = auth("district_admin", districts=("110119",))
    response = await partnership.post("/v1/imports/schools", params={"mode": "partial"}, json=rows, headers=admin)
    assert response.status_code == 200
    assert [(e["row"], e["message"]) for e in response.json()["errors"]] == [(2, "outside your districts")]
    assert await fetch(db_engine, "select code from partnership.schools") == [{"code": "Y1"}]
    assert (await partnership.post("/v1/imports/schools", json=rows, headers=auth("viewer"))).status_code == 403
    integrator = await partnership.post("/v1/imports/schools", json=rows, headers=auth("integrator"))
    assert integrator.status_code == 200


async def test_large_file_runs_as_a_job(partnership, partnership_app, settings, db_engine):
    await f.district(partnership)
    partnership_app.state.settings = partnership_app.state.settings.model_copy(update={"import_sync_rows": 3})
    lines = "".join(f"J{i},学校{i},110105,小学,乡村,{i}\n" for i in range(10))
    response = await partnership.post("/v1/imports/schools",
                                      content=("学校代码,学校名称,区县代码,学段,城乡类别,小学在校生数\n" + lines).encode(),
                                      headers=CSV_HEADERS)
    assert response.status_code == 202
    job = response.json()
    assert (job["status"], job["total_rows"]) == ("running", 10)
    assert response.headers["location"] == f"/api/v1/imports/{job['id']}"
    await run_jobs(settings)
    report = (await partnership.get(f"/v1/imports/{job['id']}")).json()
    assert (report["status"], report["inserted"], report["processed_rows"]) == ("completed", 10, 10)
    assert await fetch(db_engine, "select sum(primary_enrollment) as s from partnership.schools") == [{"s": 45}]


async def test_unknown_import_404(partnership):
    assert (await partnership.get("/v1/imports/schools.nope")).status_code == 404


async def test_an_integrator_limited_to_districts_imports_only_there(partnership, auth, db_engine):
    await f.district(partnership)
    await f.district(partnership, *f.YANQING)
    await f.school(partnership, "C0", primary=5, name="朝阳旧校")
    rows = [{"code": "Y1", "name": "延庆一校", "district_code": "110119", "stage": "primary", "locality": "rural"},
            {"code": "C1", "name": "朝阳一校", "district_code": "110105", "stage": "primary", "locality": "urban"},
            # an existing 朝阳 school may not be moved into 延庆 by a 延庆-only integrator
            {"code": "C0", "name": "朝阳旧校", "district_code": "110119", "stage": "primary", "locality": "rural"}]
    integrator = auth("integrator", districts=("110119",))
    stored = "select code, district_code, locality, version from partnership.schools order by code"
    before = [{"code": "C0", "district_code": "110105", "locality": "urban", "version": 1}]
    refused = await partnership.post("/v1/imports/schools", json=rows, headers=integrator)
    assert refused.status_code == 422, refused.text
    assert [(e["row"], e["field"], e["message"]) for e in refused.json()["errors"]] == [
        (2, None, "outside your districts"), (3, None, "outside your districts")]
    assert await fetch(db_engine, stored) == before
    partial = await partnership.post("/v1/imports/schools", params={"mode": "partial"}, json=rows, headers=integrator)
    assert partial.status_code == 200, partial.text
    assert (partial.json()["inserted"], partial.json()["updated"], partial.json()["rejected_rows"]) == (1, 0, 2)
    assert await fetch(db_engine, stored) == [*before, {"code": "Y1", "district_code": "110119", "locality": "rural",
                                                        "version": 1}]
