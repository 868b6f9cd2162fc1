"""Spreadsheet exports of lists through the gateway: CSV with BOM and XLSX, Chinese headers."""

import csv
import io

from openpyxl import load_workbook

from tests.feed import synced
from tests.partnership import factories as f


async def _pairings(gateway):
    client = gateway
    await client.post("/api/v1/districts", json={"code": "110105", "name": "朝阳区"})
    for code, locality in (("U1", "urban"), ("R1", "rural"), ("R2", "rural")):
        await client.post("/api/v1/schools", json={"code": code, "name": f"学校{code}", "district_code": "110105",
                                                   "stage": "primary", "locality": locality})
    first = await client.post("/api/v1/pairings", json={
        "lead_school_code": "U1", "partner_school_code": "R1", "program": "城乡手拉手",
        "start_date": "2024-09-01", "end_date": "2025-08-31"})
    await client.post(f"/api/v1/pairings/{first.json()['id']}/activate")
    await client.post("/api/v1/pairings", json={
        "lead_school_code": "U1", "partner_school_code": "R2", "program": "送教下乡",
        "start_date": "2024-09-01", "end_date": "2025-08-31"})


async def test_csv_with_bom_and_chinese_headers(gateway):
    await _pairings(gateway)
    response = await gateway.get("/api/v1/pairings", params={"format": "csv", "district_code": "110105"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="pairings.csv"'
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:8] == ["编号", "帮扶学校代码", "受援学校代码", "项目名称", "开始日期", "结束日期", "结对目标", "状态"]
    assert [(r[1], r[2], r[3], r[7]) for r in rows[1:]] == [("U1", "R1", "城乡手拉手", "进行中"),
                                                           ("U1", "R2", "送教下乡", "拟结对")]


async def test_xlsx_by_accept_header(gateway):
    await _pairings(gateway)
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    response = await gateway.get("/api/v1/pairings", headers={"Accept": xlsx})
    assert response.status_code == 200
    assert response.headers["content-type"] == xlsx
    sheet = load_workbook(io.BytesIO(response.content)).active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[0][1:4] == ["帮扶学校代码", "受援学校代码", "项目名称"]
    assert [row[3] for row in values[1:]] == ["城乡手拉手", "送教下乡"]


async def test_export_follows_every_page(gateway, partnership):
    await f.district(partnership)
    for i in range(3):
        await f.school(partnership, f"S{i}")
    response = await gateway.get("/api/v1/schools", params={"format": "csv", "limit": 1})
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:5] == ["代码", "名称", "区县代码", "学段", "城乡类别"]
    assert [(r[0], r[3], r[4]) for r in rows[1:]] == [("S0", "小学", "城区"), ("S1", "小学", "城区"),
                                                      ("S2", "小学", "城区")]


async def test_bad_format_422_and_json_default(gateway):
    assert (await gateway.get("/api/v1/pairings", params={"format": "pdf"})).status_code == 422
    plain = await gateway.get("/api/v1/pairings")
    assert plain.headers["content-type"] == "application/json"


async def test_district_overview_as_csv(gateway, db_engine):
    await gateway.post("/api/v1/districts", json={"code": "110105", "name": "朝阳区"})
    await gateway.post("/api/v1/schools", json={"code": "R1", "name": "乡村小学", "district_code": "110105",
                                                "stage": "primary", "locality": "rural", "primary_enrollment": 100})
    await synced(db_engine, staff=False)  # the balance counts the schools rotation's directory holds
    response = await gateway.get("/api/v1/districts/110105/overview",
                                 params={"academic_year": 2024, "as_of": "2025-03-01", "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="overview-110105-2024.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["类别", "指标", "数值"]
    assert ["手拉手结对", "镇区和乡村学校数", "1"] in rows
    assert ["手拉手结对", "结对覆盖率", "0.0"] in rows
    assert ["小学校际均衡", "学校数", "1"] in rows


async def test_rotations_and_studio_members_as_csv(gateway, chaoyang):
    rotations = await gateway.get("/api/v1/rotations", params={"format": "csv", "district_code": "110105"})
    assert rotations.status_code == 200
    rows = list(csv.DictReader(io.StringIO(rotations.content.decode("utf-8-sig"))))
    assert len(rows) == 7
    assert {"教师编号", "派出学校代码", "接收学校代码", "交流方式", "开始日期", "结束日期", "状态"} <= set(rows[0])
    by_staff = {r["教师编号"]: r for r in rows}
    r1 = by_staff[chaoyang.staff["T1"]["id"]]
    assert (r1["派出学校代码"], r1["接收学校代码"], r1["交流方式"], r1["状态"]) == ("S1", "S3", "全职交流", "进行中")
    studio = chaoyang.studios["A"]["id"]
    members = await gateway.get(f"/api/v1/studios/{studio}/members", params={"format": "xlsx"})
    assert members.status_code == 200
    assert members.headers["content-disposition"] == f'attachment; filename="studios-{studio}-members.xlsx"'
    sheet = load_workbook(io.BytesIO(members.content)).active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    header = values[0]
    staff_column = header.index("教师编号")
    assert sorted(row[staff_column] for row in values[1:]) == sorted(
        [chaoyang.staff["T3"]["id"], chaoyang.staff["T7"]["id"]])
    assert "加入日期" in header
