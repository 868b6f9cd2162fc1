"""The staff registry through HTTP: every status code of api.md → Rotation (staff), stored rows asserted."""

from __future__ import annotations

import httpx

from services.rotation.app import create_app
from tests.conftest import asgi, fetch
from tests.rotation import factories as f
from tests.rotation.factories import PROBLEM

STAFF_ROW = ("select staff_no, name, home_school_code, home_district_code, role, section, backbone_level, "
             "status, version from rotation.staff order by staff_no")


class TestCreateStaff:
    async def test_created_with_location_and_district_from_registry(self, partnership, rotation, db_engine):
        await f.chaoyang_with_schools(partnership)
        response = await rotation.post("/v1/staff", json=f.staff_body(
            staff_no="T2015001", name="张伟", backbone_level="municipal", retirement_date="2040-07-31"))
        assert response.status_code == 201, response.text
        body = response.json()
        assert response.headers["location"] == f"/api/v1/staff/{body['id']}"
        assert body["home_district_code"] == "110105"
        assert body["status"] == "active"
        assert body["name"] == "张伟"
        assert await fetch(db_engine, STAFF_ROW) == [{
            "staff_no": "T2015001", "name": "张伟", "home_school_code": "11010501", "home_district_code": "110105",
            "role": "teacher", "section": "primary", "backbone_level": "municipal", "status": "active",
            "version": 1}]

    async def test_duplicate_staff_no_is_409(self, partnership, rotation, db_engine):
        await f.chaoyang_with_schools(partnership)
        await f.staff(rotation, staff_no="T1", name="张伟")
        response = await rotation.post("/v1/staff", json=f.staff_body(staff_no="T1", name="李娜"))
        assert response.status_code == 409
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == "urn:spp:problem:duplicate-staff-no"
        assert [r["name"] for r in await fetch(db_engine, STAFF_ROW)] == ["张伟"]

    async def test_unknown_school_is_422(self, partnership, rotation, db_engine):
        await f.chaoyang_with_schools(partnership)
        response = await rotation.post("/v1/staff", json=f.staff_body(home_school_code="99999999"))
        assert response.status_code == 422
        body = response.json()
        assert body["type"] == "urn:spp:problem:unknown-school"
        assert body["errors"][0]["field"] == "body.home_school_code"
        assert await fetch(db_engine, STAFF_ROW) == []

    async def test_invalid_fields_are_422_with_paths(self, partnership, rotation):
        response = await rotation.post("/v1/staff", json={**f.staff_body(), "role": "janitor", "in_post_since": "x"})
        assert response.status_code == 422
        fields = {e["field"] for e in response.json()["errors"]}
        assert {"body.role", "body.in_post_since"} <= fields

    async def test_partnership_down_is_503_and_nothing_stored(self, settings, token, db_engine):
        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

        app = create_app(settings, transports={"partnership": httpx.MockTransport(refuse)})
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=asgi(app), base_url="http://rotation",
                                         headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"}) as client:
                response = await client.post("/v1/staff", json=f.staff_body())
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM
        body = response.json()
        assert body["type"] == "urn:spp:problem:upstream-unavailable"
        assert body["upstream"] == "partnership"
        assert await fetch(db_engine, "select count(*) as n from rotation.staff") == [{"n": 0}]

    async def test_roles_and_districts(self, partnership, rotation, auth, db_engine):
        await f.chaoyang_with_schools(partnership)
        for role in ("viewer", "integrator", "school_admin"):
            response = await rotation.post("/v1/staff", json=f.staff_body(),
                                           headers=auth(role, districts=("110105",)))
            assert response.status_code == 403, role
        other = await rotation.post("/v1/staff", json=f.staff_body(),
                                    headers=auth("district_admin", districts=("110119",)))
        assert other.status_code == 403
        assert other.json()["type"] == "urn:spp:problem:district-scope"
        mine = await rotation.post("/v1/staff", json=f.staff_body(),
                                   headers=auth("district_admin", districts=("110105",)))
        assert mine.status_code == 201
        assert len(await fetch(db_engine, STAFF_ROW)) == 1

    async def test_missing_token_is_401(self, rotation):
        response = await rotation.post("/v1/staff", json=f.staff_body(), headers={"Authorization": ""})
        assert response.status_code == 401


class TestReadStaff:
    async def test_get_404_403_and_etag(self, partnership, rotation, auth):
        await f.chaoyang_with_schools(partnership)
        member = await f.staff(rotation)
        response = await rotation.get(f"/v1/staff/{member['id']}")
        assert response.status_code == 200
        assert response.headers["etag"] == '"v1"'
        assert response.json() == member
        missing = await rotation.get("/v1/staff/00000000-0000-0000-0000-000000000000")
        assert missing.status_code == 404
        assert missing.json()["type"] == "urn:spp:problem:staff-not-found"
        outside = await rotation.get(f"/v1/staff/{member['id']}", headers=auth("viewer", districts=("110119",)))
        assert outside.status_code == 403
        school_admin = auth("school_admin", districts=("110105",), schools=("11010501",))
        assert (await rotation.get(f"/v1/staff/{member['id']}", headers=school_admin)).status_code == 200

    async def test_list_filters_and_scope(self, partnership, rotation, auth):
        await f.chaoyang_with_schools(partnership)
        a = await f.staff(rotation, staff_no="A1", name="王芳")
        b = await f.staff(rotation, staff_no="A2", name="刘洋", home_school_code="11010503", section="junior")
        c = await f.staff(rotation, staff_no="A3", name="陈静", home_school_code="11011901")

        async def ids(params=None, headers=None):
            response = await rotation.get("/v1/staff", params=params or {}, headers=headers or {})
            assert response.status_code == 200, response.text
            return [s["id"] for s in response.json()["items"]]

        assert await ids() == [a["id"], b["id"], c["id"]]
        assert await ids({"district_code": "110105"}) == [a["id"], b["id"]]
        assert await ids({"home_school_code": "11010503"}) == [b["id"]]
        assert await ids(headers=auth("district_admin", districts=("110119",))) == [c["id"]]
        denied = await rotation.get("/v1/staff", params={"district_code": "110105"},
                                    headers=auth("district_admin", districts=("110119",)))
        assert denied.status_code == 403

    async def test_pagination(self, partnership, rotation):
        await f.chaoyang_with_schools(partnership)
        for n in range(5):
            await f.staff(rotation, staff_no=f"P{n}", name=f"赵磊{n}")
        first = (await rotation.get("/v1/staff", params={"limit": 2})).json()
        assert [s["staff_no"] for s in first["items"]] == ["P0", "P1"]
        second = (await rotation.get("/v1/staff", params={"limit": 2, "cursor": first["next_cursor"]})).json()
        assert [s["staff_no"] for s in second["items"]] == ["P2", "P3"]
        third = (await rotation.get("/v1/staff", params={"limit": 2, "cursor": second["next_cursor"]})).json()
        assert [s["staff_no"] for s in third["items"]] == ["P4"] and third["next_cursor"] is None
        assert (await rotation.get("/v1/staff", params={"cursor": "garbage"})).status_code == 422
        assert (await rotation.get("/v1/staff", params={"limit": 501})).status_code == 422

    async def test_eligible_for_year(self, partnership, rotation):
        await f.chaoyang_with_schools(partnership)
        eligible = await f.staff(rotation, staff_no="E1", in_post_since="2018-09-01")
        await f.staff(rotation, staff_no="E2", in_post_since="2018-09-02")
        await f.staff(rotation, staff_no="E3", in_post_since="2010-09-01", retirement_date="2029-09-01")
        response = await rotation.get("/v1/staff", params={"eligible_for_year": 2024})
        assert [s["id"] for s in response.json()["items"]] == [eligible["id"]]
        # With a 7-year rule nobody of 2018 is eligible in 2024 any more.
        assert (await rotation.put("/v1/rotation-policies/110105", json={"min_years_teacher": 7})).status_code == 200
        response = await rotation.get("/v1/staff", params={"eligible_for_year": 2024})
        assert response.json()["items"] == []


class TestStaffByNumber:
    """GET /v1/internal/staff?staff_no=…: training asks it about the numbers of a file that its
    staff directory does not hold yet."""

    async def test_the_known_numbers_in_the_callers_scope(self, partnership, rotation, auth):
        await f.chaoyang_with_schools(partnership)
        a = await f.staff(rotation, staff_no="T2", name="张伟")
        b = await f.staff(rotation, staff_no="T1", name="李娜", home_school_code="11011901")
        response = await rotation.get("/v1/internal/staff", params=[("staff_no", "T2"), ("staff_no", "T9"),
                                                                    ("staff_no", " T1 "), ("staff_no", "T2")])
        assert response.status_code == 200, response.text
        assert response.json() == {"items": [b, a]}
        # A district caller sees its own district's staff only, as in the list.
        chaoyang = auth("district_admin", districts=("110105",))
        scoped = await rotation.get("/v1/internal/staff", params=[("staff_no", "T1"), ("staff_no", "T2")],
                                    headers=chaoyang)
        assert (scoped.status_code, scoped.json()) == (200, {"items": [a]})

    async def test_none_or_more_than_a_hundred_numbers_are_422(self, rotation):
        none = await rotation.get("/v1/internal/staff")
        assert none.status_code == 422
        assert none.headers["content-type"] == PROBLEM
        assert [e["field"] for e in none.json()["errors"]] == ["query.staff_no"]
        many = await rotation.get("/v1/internal/staff", params=[("staff_no", f"T{i}") for i in range(101)])
        assert many.status_code == 422
        assert [e["field"] for e in many.json()["errors"]] == ["query.staff_no"]
        hundred = await rotation.get("/v1/internal/staff", params=[("staff_no", f"T{i}") for i in range(100)])
        assert (hundred.status_code, hundred.json()) == (200, {"items": []})


class TestUpdateStaff:
    async def test_home_school_change_refreshes_district(self, partnership, rotation, db_engine):
        await f.chaoyang_with_schools(partnership)
        member = await f.staff(rotation, staff_no="M1")
        response = await rotation.patch(f"/v1/staff/{member['id']}", json={
            "home_school_code": "11011901", "in_post_since": "2024-09-01", "backbone_level": "district"})
        assert response.status_code == 200, response.text
        assert response.json()["home_district_code"] == "110119"
        assert response.headers["etag"] == '"v2"'
        rows = await fetch(db_engine, "select home_school_code, home_district_code, backbone_level, in_post_since, "
                                      "version from rotation.staff")
        assert rows[0]["home_school_code"] == "11011901"
        assert rows[0]["home_district_code"] == "110119"
        assert rows[0]["backbone_level"] == "district"
        assert rows[0]["version"] == 2

    async def test_status_and_retirement_corrections(self, partnership, rotation, db_engine):
        await f.chaoyang_with_schools(partnership)
        member = await f.staff(rotation, retirement_date="2030-01-31")
        response = await rotation.patch(f"/v1/staff/{member['id']}", json={"status": "retired",
                                                                           "retirement_date": None})
        assert response.status_code == 200
        assert await fetch(db_engine, "select status, retirement_date from rotation.staff") == [
            {"status": "retired", "retirement_date": None}]
        bad = await rotation.patch(f"/v1/staff/{member['id']}", json={"status": "fired"})
        assert bad.status_code == 422
        null_name = await rotation.patch(f"/v1/staff/{member['id']}", json={"name": None})
        assert null_name.status_code == 422

    async def test_unknown_school_404_403_412(self, partnership, rotation, auth, db_engine):
        await f.chaoyang_with_schools(partnership)
        member = await f.staff(rotation)
        url = f"/v1/staff/{member['id']}"
        assert (await rotation.patch(url, json={"home_school_code": "404"})).status_code == 422
        assert (await rotation.patch("/v1/staff/00000000-0000-0000-0000-000000000000",
                                     json={"name": "李强"})).status_code == 404
        yanqing_admin = auth("district_admin", districts=("110119",))
        assert (await rotation.patch(url, json={"name": "李强"}, headers=yanqing_admin)).status_code == 403
        # A Chaoyang admin may not move the person into Yanqing on their own.
        chaoyang_admin = auth("district_admin", districts=("110105",))
        assert (await rotation.patch(url, json={"home_school_code": "11011901"},
                                     headers=chaoyang_admin)).status_code == 403
        stale = await rotation.patch(url, json={"name": "李强"}, headers={"If-Match": '"v7"'})
        assert stale.status_code == 412
        assert stale.json()["type"] == "urn:spp:problem:stale-etag"
        fresh = await rotation.patch(url, json={"name": "李强"}, headers={"If-Match": '"v1"'})
        assert fresh.status_code == 200
        assert await fetch(db_engine, "select name, home_district_code, version from rotation.staff") == [
            {"name": "李强", "home_district_code": "110105", "version": 2}]


async def test_dot_segment_school_codes_are_unknown_not_unavailable(rotation, partnership, db_engine):
    """Found by fuzzing: '.' and '..' must reach partnership as codes, not as URL dot segments."""
    from tests.conftest import fetch
    from tests.rotation import factories as rf

    await rf.chaoyang_with_schools(partnership)
    for code in (".", ".."):
        response = await rotation.post("/v1/staff", json=rf.staff_body(home_school_code=code))
        assert response.status_code == 422, code
    assert await fetch(db_engine, "select count(*) as n from rotation.staff") == [{"n": 0}]
