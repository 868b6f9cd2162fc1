"""Files as offices and other systems really send them, and files built to break a parser: NUL
characters, deeply nested JSON, GB18030 and UTF-16 byte-order marks (Excel's "Unicode text" is
UTF-16 and tab-separated). Each ends in a report or a 422 problem, never a 500."""

from __future__ import annotations

from datetime import datetime

from tests.conftest import fetch
from tests.partnership import factories as f

URL = "/v1/imports/schools"
CSV = {"content-type": "text/csv"}
SCHOOLS = "select code, name, district_code, stage, locality, primary_enrollment from partnership.schools order by code"
NUL_MESSAGE = "contains a NUL character (\\x00), which cannot be stored"


async def test_a_nul_character_in_a_csv_field_is_a_row_error(partnership, db_engine):
    await f.district(partnership)
    body = ("学校代码,学校名称,区县代码,学段,城乡类别,小学在校生数\n"
            "S1,朝阳一校,110105,小学,城区,10\n"
            "S2,朝阳\x00二校,110105,小学,城区,20\n").encode()
    response = await partnership.post(URL, params={"mode": "partial"}, content=body, headers=CSV)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["inserted"], body["rejected_rows"]) == ("completed", 1, 1)
    assert body["errors"] == [{"row": 2, "field": "name", "message": NUL_MESSAGE}]
    assert await fetch(db_engine, SCHOOLS) == [{"code": "S1", "name": "朝阳一校", "district_code": "110105",
                                                "stage": "primary", "locality": "urban", "primary_enrollment": 10}]
    saved = await partnership.get(f"/v1/imports/{body['id']}")
    assert (saved.status_code, saved.json()["errors"]) == (200, body["errors"])


async def test_a_nul_character_in_a_json_field_rejects_the_file_in_all_or_nothing(partnership, db_engine):
    await f.district(partnership)
    rows = [{"code": "S1", "name": "朝阳一校", "district_code": "110105", "stage": "primary", "locality": "urban"},
            {"code": "S\u00002", "name": "二校", "district_code": "110105", "stage": "primary", "locality": "urban"}]
    response = await partnership.post(URL, json=rows)
    assert response.status_code == 422, response.text
    assert response.json()["import_status"] == "rejected"
    assert response.json()["errors"] == [{"row": 2, "field": "code", "message": NUL_MESSAGE}]
    assert await fetch(db_engine, SCHOOLS) == []


async def test_deeply_nested_json_is_a_bad_file(partnership, db_engine):
    response = await partnership.post(URL, content=b"[" * 100_000 + b"]" * 100_000,
                                      headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (response.json()["type"], response.json()["detail"]) == (
        "urn:spp:problem:bad-file", "the JSON body is nested too deeply")
    assert await fetch(db_engine, "select count(*) as n from partnership.imports") == [{"n": 0}]


ROWS = ("学校代码{d}学校名称{d}区县代码{d}学段{d}城乡类别{d}小学在校生数\n"
        "G1{d}北京市朝阳区实验小学{d}110105{d}小学{d}城区{d}1200\n"
        "G2{d}北京市朝阳区乡村小学{d}110105{d}初中{d}乡村{d}0\n")
STORED = [{"code": "G1", "name": "北京市朝阳区实验小学", "district_code": "110105", "stage": "primary",
           "locality": "urban", "primary_enrollment": 1200},
          {"code": "G2", "name": "北京市朝阳区乡村小学", "district_code": "110105", "stage": "junior",
           "locality": "rural", "primary_enrollment": 0}]


async def _imports(partnership, body: bytes) -> dict:
    response = await partnership.post(URL, content=body, headers=CSV)
    assert response.status_code == 200, response.text
    return response.json()


async def test_gb18030_with_its_byte_order_mark(partnership, db_engine):
    await f.district(partnership)
    body = b"\x84\x31\x95\x33" + ROWS.format(d=",").encode("gb18030")
    assert (await _imports(partnership, body))["inserted"] == 2
    assert await fetch(db_engine, SCHOOLS) == STORED


async def test_utf16_le_and_be_tab_separated_as_excel_writes_unicode_text(partnership, db_engine):
    await f.district(partnership)
    little = (await _imports(partnership, b"\xff\xfe" + ROWS.format(d="\t").encode("utf-16-le")))
    assert (little["inserted"], little["errors"]) == (2, [])
    assert await fetch(db_engine, SCHOOLS) == STORED
    big = await _imports(partnership, b"\xfe\xff" + ROWS.format(d="\t").replace("1200", "1300").encode("utf-16-be"))
    assert (big["inserted"], big["updated"]) == (0, 2)
    assert [r["primary_enrollment"] for r in await fetch(db_engine, SCHOOLS)] == [1300, 0]
    comma = await _imports(partnership, b"\xff\xfe" + ROWS.format(d=",").replace("1200", "1400").encode("utf-16-le"))
    assert comma["updated"] == 2
    assert [r["primary_enrollment"] for r in await fetch(db_engine, SCHOOLS)] == [1400, 0]


async def test_reports_carry_created_at_then_finished_at(partnership, db_engine):
    await f.district(partnership)
    response = await partnership.post(URL, content=ROWS.format(d=",").encode(), headers=CSV)
    assert response.status_code == 200
    answer = response.json()
    created, finished = datetime.fromisoformat(answer["created_at"]), datetime.fromisoformat(answer["finished_at"])
    assert created.tzinfo is not None and created <= finished
    stored = await fetch(db_engine, "select created_at, finished_at from partnership.imports")
    assert stored == [{"created_at": created, "finished_at": finished}]
    saved = (await partnership.get(f"/v1/imports/{answer['id']}")).json()
    assert (saved["created_at"], saved["finished_at"]) == (answer["created_at"], answer["finished_at"])
    rejected = await partnership.post(URL, content=b"code,name\nX,Y\n", headers=CSV)
    assert rejected.status_code == 422
    assert rejected.json()["created_at"] <= rejected.json()["finished_at"]
