"""Districts and the school registry through HTTP: every status code of api.md, stored state asserted."""

from tests.conftest import fetch
from tests.partnership import factories as f

PROBLEM = "application/problem+json"


class TestCreateDistrict:
    async def test_created_with_location_and_chinese_name(self, partnership, db_engine):
        response = await partnership.post("/v1/districts", json={"code": "110105", "name": "朝阳区"})
        assert response.status_code == 201
        assert response.headers["location"] == "/api/v1/districts/110105"
        assert response.json()["name"] == "朝阳区"
        rows = await fetch(db_engine, "select code, name, version from partnership.districts")
        assert rows == [{"code": "110105", "name": "朝阳区", "version": 1}]

    async def test_duplicate_code_is_409(self, partnership, db_engine):
        await f.district(partnership)
        response = await partnership.post("/v1/districts", json={"code": "110105", "name": "另一个"})
        assert response.status_code == 409
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == "urn:spp:problem:duplicate-district"
        assert await fetch(db_engine, "select name from partnership.districts") == [{"name": "朝阳区"}]

    async def test_code_must_be_gb2260_six_digits(self, partnership):
        response = await partnership.post("/v1/districts", json={"code": "11010", "name": "x"})
        assert response.status_code == 422
        body = response.json()
        assert body["errors"][0]["field"] == "body.code"
        assert body["status"] == 422

    async def test_only_city_admin(self, partnership, auth):
        response = await partnership.post("/v1/districts", json={"code": "110105", "name": "朝阳区"},
                                          headers=auth("district_admin", districts=("110105",)))
        assert response.status_code == 403

    async def test_get_and_list_are_scoped(self, partnership, auth):
        await f.district(partnership)
        await f.district(partnership, *f.YANQING)
        everything = await partnership.get("/v1/districts")
        assert [d["code"] for d in everything.json()["items"]] == ["110105", "110119"]
        scoped = auth("viewer", districts=("110119",))
        mine = await partnership.get("/v1/districts", headers=scoped)
        assert [d["code"] for d in mine.json()["items"]] == ["110119"]
        assert (await partnership.get("/v1/districts/110105", headers=scoped)).status_code == 403
        assert (await partnership.get("/v1/districts/110119", headers=scoped)).json()["name"] == "延庆区"
        assert (await partnership.get("/v1/districts/110999")).status_code == 404


class TestSchools:
    async def test_create_returns_resource_and_location(self, partnership, db_engine):
        await f.district(partnership)
        response = await partnership.post("/v1/schools", json={
            "code": "11010501", "name": "北京市朝阳区实验小学", "district_code": "110105",
            "stage": "primary", "locality": "urban", "primary_enrollment": 1200})
        assert response.status_code == 201
        assert response.headers["location"] == "/api/v1/schools/11010501"
        body = response.json()
        assert (body["primary_enrollment"], body["junior_enrollment"], body["senior_enrollment"]) == (1200, 0, 0)
        rows = await fetch(db_engine, "select code, name, district_code, stage, locality, primary_enrollment "
                                      "from partnership.schools")
        assert rows == [{"code": "11010501", "name": "北京市朝阳区实验小学", "district_code": "110105",
                         "stage": "primary", "locality": "urban", "primary_enrollment": 1200}]

    async def test_duplicate_code_409(self, partnership, db_engine):
        await f.district(partnership)
        await f.school(partnership, "S1", name="第一所")
        response = await partnership.post("/v1/schools", json={
            "code": "S1", "name": "重复", "district_code": "110105", "stage": "junior", "locality": "rural"})
        assert response.status_code == 409
        assert response.json()["type"] == "urn:spp:problem:duplicate-school"
        assert await fetch(db_engine, "select name from partnership.schools") == [{"name": "第一所"}]

    async def test_unknown_district_422(self, partnership, db_engine):
        response = await partnership.post("/v1/schools", json={
            "code": "S1", "name": "某校", "district_code": "110105", "stage": "junior", "locality": "rural"})
        assert response.status_code == 422
        assert response.json()["type"] == "urn:spp:problem:unknown-district"
        assert await fetch(db_engine, "select count(*) as n from partnership.schools") == [{"n": 0}]

    async def test_negative_enrollment_and_bad_enum_422_with_field_paths(self, partnership):
        await f.district(partnership)
        response = await partnership.post("/v1/schools", json={
            "code": "S1", "name": "某校", "district_code": "110105", "stage": "college",
            "locality": "rural", "junior_enrollment": -1})
        assert response.status_code == 422
        fields = sorted(e["field"] for e in response.json()["errors"])
        assert fields == ["body.junior_enrollment", "body.stage"]

    async def test_filters_and_pagination(self, partnership):
        await f.district(partnership)
        await f.district(partnership, *f.YANQING)
        for i in range(5):
            await f.school(partnership, f"C{i}", locality="rural" if i % 2 else "urban")
        await f.school(partnership, "Y0", district_code="110119", locality="rural", stage="junior")
        first = await partnership.get("/v1/schools", params={"district_code": "110105", "limit": 2})
        assert [s["code"] for s in first.json()["items"]] == ["C0", "C1"]
        cursor = first.json()["next_cursor"]
        second = await partnership.get("/v1/schools", params={"district_code": "110105", "limit": 2,
                                                               "cursor": cursor})
        assert [s["code"] for s in second.json()["items"]] == ["C2", "C3"]
        third = await partnership.get("/v1/schools", params={"district_code": "110105", "limit": 2,
                                                              "cursor": second.json()["next_cursor"]})
        assert [s["code"] for s in third.json()["items"]] == ["C4"]
        assert third.json()["next_cursor"] is None
        rural = await partnership.get("/v1/schools", params={"locality": "rural"})
        assert [s["code"] for s in rural.json()["items"]] == ["C1", "C3", "Y0"]
        junior = await partnership.get("/v1/schools", params={"stage": "junior"})
        assert [s["code"] for s in junior.json()["items"]] == ["Y0"]

    async def test_bad_cursor_and_limit_are_422(self, partnership):
        assert (await partnership.get("/v1/schools", params={"cursor": "!!"})).status_code == 422
        assert (await partnership.get("/v1/schools", params={"limit": 501})).status_code == 422

    async def test_patch_corrects_and_bumps_version(self, partnership, db_engine):
        await f.district(partnership)
        await f.school(partnership, "S1", primary=100)
        response = await partnership.patch("/v1/schools/S1", json={"primary_enrollment": 150, "name": "新校名"})
        assert response.status_code == 200
        assert response.json()["primary_enrollment"] == 150
        rows = await fetch(db_engine, "select name, primary_enrollment, version from partnership.schools")
        assert rows == [{"name": "新校名", "primary_enrollment": 150, "version": 2}]
        assert (await partnership.patch("/v1/schools/NOPE", json={"name": "x"})).status_code == 404
        assert (await partnership.patch("/v1/schools/S1", json={"code": "S2"})).status_code == 422

    async def test_district_admin_writes_only_in_own_district(self, partnership, auth, db_engine):
        await f.district(partnership)
        await f.district(partnership, *f.YANQING)
        mine = auth("district_admin", districts=("110119",))
        body = {"code": "S1", "name": "某校", "district_code": "110105", "stage": "primary", "locality": "urban"}
        response = await partnership.post("/v1/schools", json=body, headers=mine)
        assert response.status_code == 403
        assert response.headers["content-type"] == PROBLEM
        ok = await partnership.post("/v1/schools", json={**body, "district_code": "110119"}, headers=mine)
        assert ok.status_code == 201
        assert await fetch(db_engine, "select district_code from partnership.schools") == [
            {"district_code": "110119"}]
