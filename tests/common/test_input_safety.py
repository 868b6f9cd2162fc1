"""Hostile input at the boundary (issue 9, "Trust"): cursors that are not ours and codes that cannot
live in a URL are refused with a 422 problem naming the field, never a 500, and the database holds
the same rules as CHECK constraints."""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from services.common.paging import MAX_CURSOR_LENGTH
from services.common.vocabulary import location
from tests.conftest import fetch
from tests.partnership import factories as f

PROBLEM = "application/problem+json"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _assert_invalid_cursor(response) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "urn:spp:problem:invalid-cursor"
    assert body["errors"] == [{"field": "query.cursor", "message": "invalid cursor", "type": "value_error"}]


class TestCursor:
    async def test_deeply_nested_cursor_is_invalid_not_a_crash(self, partnership):
        # 20,000 deep: past Python's recursion limit, yet inside httpx's 64 KiB bound on a query.
        deep = _b64(b"[" * 20_000 + b"]" * 20_000)
        _assert_invalid_cursor(await partnership.get("/v1/schools", params={"cursor": deep}))

    async def test_nesting_within_the_length_bound_is_invalid(self, partnership):
        await f.district(partnership)
        for code in ("S1", "S2", "S3"):
            await f.school(partnership, code)
        first = (await partnership.get("/v1/schools", params={"limit": 2})).json()
        rest = (await partnership.get("/v1/schools", params={"limit": 2, "cursor": first["next_cursor"]})).json()
        assert ([s["code"] for s in rest["items"]], rest["next_cursor"]) == (["S3"], None)  # ours still work
        # Short enough to be decoded, yet nested: the shape check refuses it.
        nested = _b64(b"[" * 150 + b"]" * 150)
        assert len(nested) <= MAX_CURSOR_LENGTH
        _assert_invalid_cursor(await partnership.get("/v1/schools", params={"cursor": nested}))

    async def test_cursor_longer_than_the_bound_is_invalid(self, partnership):
        long = _b64(json.dumps(["x" * MAX_CURSOR_LENGTH]).encode())
        _assert_invalid_cursor(await partnership.get("/v1/districts", params={"cursor": long}))

    async def test_non_scalar_key_value_is_invalid(self, partnership):
        # A list where the school code belongs would otherwise be turned into the text "['x']".
        _assert_invalid_cursor(await partnership.get("/v1/schools", params={"cursor": _b64(b'[["x"]]')}))


SCHOOL = {"name": "北京市朝阳区实验小学", "district_code": "110105", "stage": "primary", "locality": "urban"}


class TestSchoolCodes:
    async def test_only_url_safe_codes_are_accepted_and_location_points_at_them(self, partnership, db_engine):
        await f.district(partnership)
        for code in ["a/b?c#d", "学校1", "", "   ", "a b", "a%2Fb", "x" * 65]:
            response = await partnership.post("/v1/schools", json={"code": code, **SCHOOL})
            assert response.status_code == 422, (code, response.text)
            assert response.headers["content-type"] == PROBLEM
            body = response.json()
            assert body["type"] == "urn:spp:problem:validation"
            assert [e["field"] for e in body["errors"]] == ["body.code"], code
        assert await fetch(db_engine, "select count(*) as n from partnership.schools") == [{"n": 0}]

        code = "Sch-01_" + "x" * 57  # every allowed character class, exactly 64 long
        response = await partnership.post("/v1/schools", json={"code": code, **SCHOOL})
        assert response.status_code == 201, response.text
        assert response.headers["location"] == f"/api/v1/schools/{code}"
        again = await partnership.get(response.headers["location"].removeprefix("/api"))
        assert (again.status_code, again.json()["code"]) == (200, code)
        assert await fetch(db_engine, "select code from partnership.schools") == [{"code": code}]

    def test_location_headers_are_percent_encoded(self):
        assert location("schools", "a/b?c#d") == "/api/v1/schools/a%2Fb%3Fc%23d"
        assert location("schools", "学校1") == "/api/v1/schools/%E5%AD%A6%E6%A0%A11"
        assert location("activities", pairing_id="p 1&x") == "/api/v1/activities?pairing_id=p+1%26x"

    async def test_references_to_schools_use_the_same_rule(self, partnership, rotation):
        await f.district(partnership)
        response = await rotation.post("/v1/staff", json={
            "staff_no": "T1", "name": "张伟", "home_school_code": "学校1", "role": "teacher",
            "section": "primary", "in_post_since": "2015-09-01"})
        assert response.status_code == 422
        # Refused by its shape before anyone asks the registry (which would say unknown-school).
        assert response.json()["type"] == "urn:spp:problem:validation"
        assert [e["field"] for e in response.json()["errors"]] == ["body.home_school_code"]

    async def test_school_import_refuses_the_row(self, partnership, db_engine):
        await f.district(partnership)
        csv = "code,name,district_code,stage,locality\na/b?c#d,某校,110105,primary,urban\n"
        response = await partnership.post("/v1/imports/schools", content=csv.encode(),
                                          headers={"content-type": "text/csv"})
        assert response.status_code == 422, response.text
        report = response.json()
        assert [e["field"] for e in report["errors"]] == ["code"]
        assert await fetch(db_engine, "select count(*) as n from partnership.schools") == [{"n": 0}]


class TestDatabaseHoldsTheCodeRules:
    """What the API refuses, PostgreSQL refuses too: a writer that bypasses the API cannot store it."""

    @pytest.mark.parametrize(("sql", "constraint"), [
        ("insert into partnership.schools (code, name, district_code, stage, locality) "
         "values ('a/b?c#d', '某校', '110105', 'primary', 'urban')", "ck_schools_code_url_safe"),
        ("insert into partnership.schools (code, name, district_code, stage, locality) "
         "values ('学校1', '某校', '110105', 'primary', 'urban')", "ck_schools_code_url_safe"),
        ("insert into partnership.schools (code, name, district_code, stage, locality) "
         "values ('École', '某校', '110105', 'primary', 'urban')", "ck_schools_code_url_safe"),
        ("insert into rotation.rotation_policies (district_code, min_years_teacher, min_years_cadre, "
         "retirement_exempt_years, target_rate, target_backbone_share, updated_by) "
         "values ('11010x', 6, 6, 5, 0.1, 0.2, 't')",
         "ck_rotation_policies_district_code_gb2260"),
        ("insert into rotation.rotation_plans (id, district_code, academic_year, title, created_by) "
         "values (gen_random_uuid(), '1101', 2024, '计划', 't')", "ck_rotation_plans_district_code_gb2260"),
        ("insert into rotation.staff (id, staff_no, name, home_school_code, home_district_code, role, section, "
         "in_post_since) values (gen_random_uuid(), 'T1', '张伟', 'a/b', '110105', 'teacher', 'primary', "
         "'2015-09-01')", "ck_staff_home_school_code_url_safe"),
    ])
    async def test_check_constraint(self, partnership, db_engine, sql, constraint):
        await f.district(partnership)
        with pytest.raises(IntegrityError) as raised:
            async with db_engine.begin() as conn:
                await conn.execute(text(sql))
        assert constraint in str(raised.value)


@pytest.mark.parametrize(("written", "read"), [
    ("2015-09-01", "2015-09-01"), ("2015/9/1", "2015-09-01"), ("2015.9.1", "2015-09-01"),
    ("2015年9月1日", "2015-09-01"), (" 2015 年 9 月 1 日 ", "2015-09-01"), ("20150901", "2015-09-01"),
    ("2015-02-30", "2015-02-30"), ("九月一日", "九月一日"), (None, None)])
def test_one_office_date_parser_for_every_import(written, read):
    from services.common.vocabulary import office_date

    assert office_date(written) == read
