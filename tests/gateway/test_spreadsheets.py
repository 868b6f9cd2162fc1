"""Spreadsheets as offices use them (issue 11 item 5), through the gateway: XLSX imports inline and
as a job, rows named by the numbers Excel shows, a corrupt workbook refused; a template per kind
(XLSX with its 说明 sheet, CSV with BOM) that imports back once filled; exports with a Chinese label
for every column and value, Beijing times to the second and dates as dates."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone
from urllib.parse import quote

from openpyxl import Workbook, load_workbook

from tests.conftest import asgi, fetch
from tests.jobs import run_jobs

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STAFF = ("select staff_no, name, home_school_code, home_district_code, role, section, subject, backbone_level, "
         "in_post_since::text, retirement_date::text from rotation.staff order by staff_no")
VOLATILE = ("id", "created_at", "finished_at")


async def _school(gateway, code: str = "11010501") -> None:
    if (await gateway.get("/api/v1/districts/110105")).status_code == 404:
        assert (await gateway.post("/api/v1/districts", json={"code": "110105", "name": "朝阳区"})).status_code == 201
    created = await gateway.post("/api/v1/schools", json={
        "code": code, "name": f"学校{code}", "district_code": "110105", "stage": "primary", "locality": "urban"})
    assert created.status_code == 201, created.text


def _workbook(rows: list[list], *, title: list | None = None) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    if title is not None:
        sheet.append(title)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _stable(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in VOLATILE}


STAFF_HEADER = ["工号", "姓名", "任职学校代码", "岗位", "任教学段", "学科", "骨干级别", "现岗位起始日期", "退休日期"]


async def test_xlsx_import_inline_with_chinese_headers_excel_dates_and_numeric_staff_numbers(gateway, db_engine):
    await _school(gateway)
    body = _workbook([
        STAFF_HEADER,
        [20180001, " 张伟 ", 11010501, "教师", "小学", "数学", "区级骨干", date(2015, 9, 1), None],   # row 3
        [],                                                                                          # row 4
        [20180002.0, "王芳", "11010501", "副校长", "初中", None, "无", datetime(2018, 9, 1), "2035/7/31"],  # 5
        [20180001, "张伟(重复)", 11010501, "教师", "小学", "数学", "无", date(2016, 9, 1), None],     # row 6
        [], [],
    ], title=["2024年朝阳区教职工名单"])  # a title row above the header, as offices write
    response = await gateway.post("/api/v1/imports/staff", params={"mode": "partial"}, content=body,
                                  headers={"Content-Type": XLSX})
    assert response.status_code == 200, response.text
    assert _stable(response.json()) == {
        "kind": "staff", "status": "completed", "mode": "partial", "dry_run": False, "total_rows": 3,
        "processed_rows": 3, "valid_rows": 2, "inserted": 2, "updated": 0, "unchanged": 0, "rejected_rows": 1,
        "errors": [{"row": 6, "field": "staff_no", "message": "duplicate of row 3 in this file"}], "detail": None}
    assert await fetch(db_engine, STAFF) == [
        {"staff_no": "20180001", "name": "张伟", "home_school_code": "11010501", "home_district_code": "110105",
         "role": "teacher", "section": "primary", "subject": "数学", "backbone_level": "district",
         "in_post_since": "2015-09-01", "retirement_date": None},
        {"staff_no": "20180002", "name": "王芳", "home_school_code": "11010501", "home_district_code": "110105",
         "role": "vice_principal", "section": "junior", "subject": None, "backbone_level": "none",
         "in_post_since": "2018-09-01", "retirement_date": "2035-07-31"}]


async def test_xlsx_import_large_enough_for_a_job(gateway, rotation_app, partnership_app, settings, db_engine):
    await _school(gateway)
    rotation_app.state.settings = settings.model_copy(update={"import_sync_rows": 3})
    rows = [[f"T{i:03d}", f"老师{i}", "11010501", "教师", "小学", "数学", "无", date(2015, 9, 1)] for i in range(10)]
    rows.append(["T000", "重复", "11010501", "教师", "小学", "数学", "无", date(2015, 9, 1)])  # Excel row 12
    # Sent as a plain binary file: the ZIP signature says it is a workbook.
    started = await gateway.post("/api/v1/imports/staff", params={"mode": "partial"},
                                 content=_workbook([STAFF_HEADER[:8], *rows]),
                                 headers={"Content-Type": "application/octet-stream"})
    assert started.status_code == 202, started.text
    job = started.json()
    assert (job["status"], job["total_rows"], started.headers["location"]) == (
        "running", 11, f"/api/v1/imports/{job['id']}")
    stored = await fetch(db_engine, "select params->>'content_type' as type, count(f.seq) as chunks "
                                    "from rotation.imports i join rotation.import_files f on f.import_id = i.id "
                                    "group by 1")
    assert stored == [{"type": "application/octet-stream", "chunks": 1}]
    await run_jobs(settings, partnership=asgi(partnership_app))
    report = (await gateway.get(f"/api/v1/imports/{job['id']}")).json()
    assert _stable(report) == {
        "kind": "staff", "status": "completed", "mode": "partial", "dry_run": False, "total_rows": 11,
        "processed_rows": 11, "valid_rows": 10, "inserted": 10, "updated": 0, "unchanged": 0, "rejected_rows": 1,
        "errors": [{"row": 12, "field": "staff_no", "message": "duplicate of row 2 in this file"}], "detail": None}
    assert await fetch(db_engine, "select count(*) as n, min(in_post_since)::text as since from rotation.staff") == [
        {"n": 10, "since": "2015-09-01"}]


async def test_a_corrupt_xlsx_is_422_bad_file(gateway, db_engine):
    whole = _workbook([STAFF_HEADER])
    for body, content_type in ((b"PK\x03\x04 not really a workbook", XLSX), (whole[: len(whole) // 2], XLSX),
                               (b"name,code\n", XLSX)):
        response = await gateway.post("/api/v1/imports/staff", content=body, headers={"Content-Type": content_type})
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert (problem["type"], problem["status"], problem["detail"]) == (
            "urn:spp:problem:bad-file", 422, "the file is not a readable XLSX workbook")
    assert await fetch(db_engine, "select count(*) as n from rotation.imports") == [{"n": 0}]


def _disposition(ascii_name: str, chinese: str) -> str:
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(chinese)}"


async def test_xlsx_template_has_headers_an_example_and_instructions(gateway):
    response = await gateway.get("/api/v1/imports/staff/template")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX
    assert response.headers["content-disposition"] == _disposition("staff-template.xlsx", "教职工导入模板.xlsx")
    workbook = load_workbook(io.BytesIO(response.content))
    assert workbook.sheetnames == ["教职工", "说明"]
    data = [list(row) for row in workbook["教职工"].iter_rows(values_only=True)]
    assert data == [STAFF_HEADER, ["T20180001", "张伟", "11010501", "教师", "小学", "数学", "区级骨干",
                                   datetime(2015, 9, 1), None]]
    sheet = workbook["教职工"]
    assert (sheet["A2"].number_format, sheet["H2"].number_format) == ("@", "yyyy-mm-dd")
    instructions = [list(row) for row in workbook["说明"].iter_rows(values_only=True)]
    assert instructions == [
        ["列名", "英文列名", "是否必填", "格式", "可选值", "备注"],
        ["工号", "staff_no", "必填", "文本，最多 64 字", None, None],
        ["姓名", "name", "必填", "文本，最多 200 字", None, None],
        ["任职学校代码", "home_school_code", "必填", "文本，最多 64 字，仅字母、数字、- 和 _", None, "平台中已登记的学校"],
        ["岗位", "role", "必填", "可选值之一", "教师（teacher）、校长（principal）、副校长（vice_principal）、中层干部（middle_manager）",
         None],
        ["任教学段", "section", "必填", "可选值之一", "小学（primary）、初中（junior）、高中（senior）", None],
        ["学科", "subject", "选填", "文本，最多 100 字", None, None],
        ["骨干级别", "backbone_level", "选填", "可选值之一",
         "无（none）、校级骨干（school）、区级骨干（district）、市级骨干（municipal）、特级教师（special_grade）", None],
        ["现岗位起始日期", "in_post_since", "必填", "日期，如 2024-09-01", None, None],
        ["退休日期", "retirement_date", "选填", "日期，如 2024-09-01", None, "未定可空"],
        [None, None, None, None, None, None],
        ["第 1 行是列名，中文或英文列名均可；第 2 行是示例，导入前请改写或删除。", None, None, None, None, None],
        ["每行一条记录，空行会被忽略；错误报告中的行号与 Excel 左侧的行号一致。", None, None, None, None, None],
        ["可选值填中文或英文均可；日期可填 Excel 日期或 2024-09-01、2024/9/1、2024年9月1日。", None, None, None, None, None],
    ]


async def test_csv_template_is_the_header_and_example_with_bom(gateway):
    response = await gateway.get("/api/v1/imports/schools/template", params={"format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == _disposition("schools-template.csv", "学校导入模板.csv")
    assert response.content == (
        "\ufeff学校代码,学校名称,区县代码,学段,城乡类别,小学在校生数,初中在校生数,高中在校生数\r\n"
        "11010501,北京市朝阳区实验小学,110105,小学,城区,1200,0,0\r\n").encode("utf-8")
    hours = await gateway.get("/api/v1/imports/training-hours/template", params={"format": "csv"})
    assert hours.content == ("\ufeff教师编号,工号,学时,取得日期,来源,凭证编号\r\n"
                             ",T20180001,4.5,2024-10-12,市级培训,BJ-2024-000123\r\n").encode("utf-8")
    assert (await gateway.get("/api/v1/imports/pupils/template")).status_code == 404
    assert (await gateway.get("/api/v1/imports/staff/template", params={"format": "pdf"})).status_code == 422


async def test_a_filled_template_imports_back(gateway, db_engine):
    await _school(gateway, "11010501")
    await _school(gateway, "11010523")
    staff = await gateway.post("/api/v1/staff", json={
        "staff_no": "T20180001", "name": "张伟", "home_school_code": "11010501", "role": "teacher",
        "section": "primary", "backbone_level": "district", "in_post_since": "2015-09-01"})
    assert staff.status_code == 201, staff.text
    template = await gateway.get("/api/v1/imports/rotations/template")
    workbook = load_workbook(io.BytesIO(template.content))
    sheet = workbook["交流轮岗记录"]
    # The example row rewritten, one row added below it, as an office fills the sheet.
    for row, values in enumerate((["T20180001", "11010523", "全职交流", date(2022, 9, 1), date(2023, 8, 31), "已完成"],
                                  ["T20180001", "11010523", "兼职交流", date(2024, 9, 1), date(2025, 8, 31), "计划中"]),
                                 start=2):
        for column, value in enumerate(values, start=1):
            sheet.cell(row=row, column=column, value=value)
    out = io.BytesIO()
    workbook.save(out)
    response = await gateway.post("/api/v1/imports/rotations", content=out.getvalue(), headers={"Content-Type": XLSX})
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["inserted"], response.json()["errors"]) == ("completed", 2, [])
    assert await fetch(db_engine, "select to_school_code, mode, start_date::text, end_date::text, status "
                                  "from rotation.rotations order by start_date") == [
        {"to_school_code": "11010523", "mode": "full_time", "start_date": "2022-09-01", "end_date": "2023-08-31",
         "status": "completed"},
        {"to_school_code": "11010523", "mode": "part_time", "start_date": "2024-09-01", "end_date": "2025-08-31",
         "status": "planned"}]


def _beijing(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp).astimezone(timezone(timedelta(hours=8))).replace(tzinfo=None, microsecond=0)


async def test_exports_label_every_column_and_value_in_beijing_time(gateway):
    await _school(gateway)
    created = await gateway.post("/api/v1/staff", json={
        "staff_no": "T1", "name": "张伟", "home_school_code": "11010501", "role": "vice_principal",
        "section": "junior", "subject": "数学", "backbone_level": "special_grade", "in_post_since": "2015-09-01"})
    assert created.status_code == 201, created.text
    item = created.json()
    header = ["编号", "工号", "姓名", "任职学校代码", "任职区县代码", "岗位", "任教学段", "学科", "骨干级别",
              "现岗位起始日期", "退休日期", "状态", "版本号", "创建时间", "更新时间"]
    created_at, updated_at = _beijing(item["created_at"]), _beijing(item["updated_at"])
    response = await gateway.get("/api/v1/staff", params={"format": "csv"})
    assert response.status_code == 200, response.text
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows == [header, [item["id"], "T1", "张伟", "11010501", "110105", "副校长", "初中", "数学", "特级教师",
                             "2015-09-01", "", "在岗", "1", f"{created_at:%Y-%m-%d %H:%M:%S}",
                             f"{updated_at:%Y-%m-%d %H:%M:%S}"]]
    workbook = await gateway.get("/api/v1/staff", params={"format": "xlsx"})
    sheet = load_workbook(io.BytesIO(workbook.content)).active
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert values == [header, [item["id"], "T1", "张伟", "11010501", "110105", "副校长", "初中", "数学", "特级教师",
                               datetime(2015, 9, 1), None, "在岗", 1, created_at, updated_at]]
    assert (sheet["J2"].number_format, sheet["N2"].number_format) == ("yyyy-mm-dd", "yyyy-mm-dd hh:mm:ss")
    schools = await gateway.get("/api/v1/schools", params={"format": "csv"})
    school_rows = list(csv.reader(io.StringIO(schools.content.decode("utf-8-sig"))))
    assert school_rows[0] == ["代码", "名称", "区县代码", "学段", "城乡类别", "小学在校生数", "初中在校生数",
                              "高中在校生数", "创建时间", "更新时间"]
    assert school_rows[1][:5] == ["11010501", "学校11010501", "110105", "小学", "城区"]
