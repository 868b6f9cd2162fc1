"""Problems and import reports in Chinese (the default, and `zh*`) or English (`en`), through the
gateway: its own problems, and the services' problems, which get the caller's Accept-Language
(issue 11 item 4)."""

from __future__ import annotations

import httpx
import pytest

from gateway.app import create_app
from tests.conftest import asgi, fetch

PROBLEM = "application/problem+json"
ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
EN = {"Accept-Language": "en-US,en;q=0.9,zh;q=0.5"}
NONE = {"Accept-Language": ""}  # the fixture's client asks for English; an empty value asks for nothing


def _body(response: httpx.Response) -> dict:
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body.pop("request_id") == response.headers["x-request-id"]
    return body


async def test_a_404_of_a_service_comes_in_the_callers_language(gateway):
    zh = await gateway.get("/api/v1/schools/11019999", headers=ZH)
    en = await gateway.get("/api/v1/schools/11019999", headers=EN)
    unasked = await gateway.get("/api/v1/schools/11019999", headers=NONE)
    assert (zh.status_code, en.status_code, unasked.status_code) == (404, 404, 404)
    assert _body(zh) == {"type": "urn:spp:problem:school-not-found", "title": "未找到", "status": 404,
                         "detail": "学校 11019999 不存在"}
    assert _body(en) == {"type": "urn:spp:problem:school-not-found", "title": "Not found", "status": 404,
                         "detail": "school 11019999 does not exist"}
    assert _body(unasked) == _body(zh)


async def test_an_unknown_language_gets_chinese_and_q_values_decide(gateway):
    french = await gateway.get("/api/v1/rotations/00000000-0000-0000-0000-000000000000",
                               headers={"Accept-Language": "fr-FR"})
    english_preferred = await gateway.get("/api/v1/rotations/00000000-0000-0000-0000-000000000000",
                                          headers={"Accept-Language": "zh;q=0.3, fr, en;q=0.7"})
    assert _body(french)["detail"] == "交流轮岗 00000000-0000-0000-0000-000000000000 不存在"
    assert _body(english_preferred)["detail"] == "rotation 00000000-0000-0000-0000-000000000000 does not exist"


async def test_a_409_from_a_database_constraint_in_both_languages(gateway, db_engine):
    created = await gateway.post("/api/v1/districts", json={"code": "110105", "name": "朝阳区"})
    assert created.status_code == 201
    zh = await gateway.post("/api/v1/districts", json={"code": "110105", "name": "又一个朝阳区"}, headers=ZH)
    en = await gateway.post("/api/v1/districts", json={"code": "110105", "name": "又一个朝阳区"}, headers=EN)
    assert (zh.status_code, en.status_code) == (409, 409)
    assert _body(zh) == {"type": "urn:spp:problem:duplicate-district", "title": "与规则冲突", "status": 409,
                         "detail": "此代码的区县已存在", "constraint": "pk_districts"}
    assert _body(en) == {"type": "urn:spp:problem:duplicate-district", "title": "Conflicts with a rule",
                         "status": 409, "detail": "a district with this code already exists",
                         "constraint": "pk_districts"}
    assert await fetch(db_engine, "SELECT code, name FROM partnership.districts") == [
        {"code": "110105", "name": "朝阳区"}]


async def test_a_422_validation_error_names_each_field_not_field_required(gateway, db_engine):
    body = {"code": "9", "nmae": "朝阳区"}
    zh = await gateway.post("/api/v1/districts", json=body, headers=ZH)
    en = await gateway.post("/api/v1/districts", json=body, headers=EN)
    assert (zh.status_code, en.status_code) == (422, 422)
    assert _body(zh) == {
        "type": "urn:spp:problem:validation", "title": "请求无效", "status": 422,
        "detail": "code 的格式不正确（应匹配 ^[1-8][0-9]{5}$）；name 为必填项；nmae 不是可接受的字段",
        "errors": [
            {"field": "body.code", "type": "string_pattern_mismatch",
             "message": "code 的格式不正确（应匹配 ^[1-8][0-9]{5}$）"},
            {"field": "body.name", "type": "missing", "message": "name 为必填项"},
            {"field": "body.nmae", "type": "extra_forbidden", "message": "nmae 不是可接受的字段"}]}
    assert _body(en) == {
        "type": "urn:spp:problem:validation", "title": "Invalid request", "status": 422,
        "detail": "code does not have the required form (^[1-8][0-9]{5}$); name is required; "
                  "nmae is not a known field",
        "errors": [
            {"field": "body.code", "type": "string_pattern_mismatch",
             "message": "code does not have the required form (^[1-8][0-9]{5}$)"},
            {"field": "body.name", "type": "missing", "message": "name is required"},
            {"field": "body.nmae", "type": "extra_forbidden", "message": "nmae is not a known field"}]}
    assert await fetch(db_engine, "SELECT code FROM partnership.districts") == []


SCHOOLS_CSV = ("学校代码,学校名称,区县代码,学段,城乡类别\n"
               "11010501,北京市朝阳区实验小学,110105,小学,城区\n"
               "11010502,北京市朝阳区第二小学,110105,小学,郊区\n").encode()


async def test_an_import_row_error_names_the_column_as_the_file_wrote_it(gateway, db_engine):
    await gateway.post("/api/v1/districts", json={"code": "110105", "name": "朝阳区"})
    url = "/api/v1/imports/schools"
    zh = await gateway.post(url, content=SCHOOLS_CSV, headers={"content-type": "text/csv", **NONE})
    en = await gateway.post(url, content=SCHOOLS_CSV, headers={"content-type": "text/csv", **EN})
    assert (zh.status_code, en.status_code) == (422, 422)
    assert zh.headers["content-type"] == en.headers["content-type"] == PROBLEM
    zh_body, en_body = zh.json(), en.json()
    assert {k: zh_body[k] for k in ("type", "title", "status", "detail", "import_status", "errors")} == {
        "type": "urn:spp:problem:import-rejected", "title": "导入被拒绝", "status": 422,
        "detail": "2 行中有 1 行存在错误，未写入任何数据", "import_status": "rejected",
        "errors": [{"row": 2, "field": "locality",
                    "message": "城乡类别 必须是 'urban'、'township'、'rural' 之一"}]}
    assert {k: en_body[k] for k in ("type", "title", "status", "detail", "import_status", "errors")} == {
        "type": "urn:spp:problem:import-rejected", "title": "Import rejected", "status": 422,
        "detail": "1 of 2 rows have errors; nothing was written", "import_status": "rejected",
        "errors": [{"row": 2, "field": "locality",
                    "message": "城乡类别 must be one of 'urban', 'township' or 'rural'"}]}
    assert await fetch(db_engine, "SELECT code FROM partnership.schools") == []


async def test_a_stored_import_report_is_read_in_the_readers_language(gateway, db_engine):
    """The report is stored once (in English) and rendered for whoever reads it, whenever."""
    await gateway.post("/api/v1/districts", json={"code": "110105", "name": "朝阳区"})
    csv = SCHOOLS_CSV + "11010503,北京市朝阳区第三小学,110199,小学,乡村\n".encode()
    written = await gateway.post("/api/v1/imports/schools", params={"mode": "partial"}, content=csv,
                                 headers={"content-type": "text/csv", **ZH})
    assert written.status_code == 200
    location = written.headers["location"]
    import_id = written.json()["id"]
    stored = await fetch(db_engine, "SELECT report -> 'errors' AS errors FROM partnership.imports WHERE id = :id",
                         id=import_id)
    assert stored == [{"errors": [
        {"row": 2, "field": "locality", "message": "城乡类别 must be one of 'urban', 'township' or 'rural'"},
        {"row": 3, "field": "district_code", "message": "unknown district 110199"}]}]
    zh = await gateway.get(location, headers=ZH)
    en = await gateway.get(location, headers=EN)
    assert (zh.status_code, en.status_code) == (200, 200)
    assert (zh.json()["status"], zh.json()["inserted"], zh.json()["rejected_rows"]) == ("completed", 1, 2)
    assert zh.json()["errors"] == [
        {"row": 2, "field": "locality", "message": "城乡类别 必须是 'urban'、'township'、'rural' 之一"},
        {"row": 3, "field": "district_code", "message": "未知区县 110199"}]
    assert en.json()["errors"] == [
        {"row": 2, "field": "locality", "message": "城乡类别 must be one of 'urban', 'township' or 'rural'"},
        {"row": 3, "field": "district_code", "message": "unknown district 110199"}]
    assert {k: v for k, v in zh.json().items() if k != "errors"} == {
        k: v for k, v in en.json().items() if k != "errors"}


async def test_the_gateways_own_invalid_header_problem_in_both_languages(gateway):
    zh = await gateway.get("/api/v1/districts", headers={**ZH, "If-None-Match": "\u00e9t\u00e9".encode()})
    en = await gateway.get("/api/v1/districts", headers={**EN, "If-None-Match": "\u00e9t\u00e9".encode()})
    assert (zh.status_code, en.status_code) == (400, 400)
    assert _body(zh) == {"type": "urn:spp:problem:invalid-header", "title": "请求无效", "status": 400,
                         "detail": "If-None-Match 请求头只能包含可打印的 ASCII 字符"}
    assert _body(en) == {"type": "urn:spp:problem:invalid-header", "title": "Invalid request", "status": 400,
                         "detail": "the If-None-Match header must be printable ASCII"}


@pytest.fixture
async def limited_gateway(settings, partnership_app, token):
    app = create_app(settings.model_copy(update={"rate_limit_per_minute": 1,
                                                 "rate_limit_storage": "memory://languages"}),
                     transports={"partnership": asgi(partnership_app)})
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=asgi(app), base_url="http://gw",
                                     headers={"Authorization": f"Bearer {token(sub='languages')}"}) as client:
            yield client


async def test_the_gateways_429_in_both_languages(limited_gateway):
    assert (await limited_gateway.get("/api/v1/districts")).status_code == 200
    zh = await limited_gateway.get("/api/v1/districts")
    en = await limited_gateway.get("/api/v1/districts", headers=EN)
    assert (zh.status_code, en.status_code) == (429, 429)
    assert zh.headers["content-type"] == en.headers["content-type"] == PROBLEM
    assert {k: v for k, v in zh.json().items() if k != "request_id"} == {
        "type": "urn:spp:problem:rate-limited", "title": "请求过于频繁", "status": 429,
        "detail": "超出每分钟 1 次请求的限额"}
    assert {k: v for k, v in en.json().items() if k != "request_id"} == {
        "type": "urn:spp:problem:rate-limited", "title": "Too many requests", "status": 429,
        "detail": "rate limit of 1 requests a minute exceeded"}
