"""Spreadsheet exports for people who live in Excel: CSV (UTF-8 with BOM) and XLSX, Chinese headers.

`?format=csv|xlsx` or an `Accept` of `text/csv` / the XLSX media type chooses. Lists are read from
the owning service page by page (500 a page) up to a bound, then rendered off the event loop.
Every column has a Chinese header and every enum value its Chinese label (services/common/labels.py,
the labels imports accept, so an exported sheet imports back); times are Beijing time to the second
(`2026-11-25 19:30:05`), dates are dates (date cells in XLSX).
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from fastapi import Request, Response

from services.common import labels
from services.common.errors import Unprocessable
from services.common.upstream import Upstream

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_ROWS = 100_000
# Asia/Shanghai: UTC+8 all year since 1991 (no summer time), so no time-zone database is needed.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
DATE_FORMAT = "yyyy-mm-dd"

HEADERS: dict[str, str] = {
    # pairings
    "id": "编号", "lead_school_code": "帮扶学校代码", "partner_school_code": "受援学校代码", "program": "项目名称",
    "start_date": "开始日期", "end_date": "结束日期", "goals": "结对目标", "status": "状态",
    "created_at": "创建时间", "updated_at": "更新时间",
    # rotations
    "staff_id": "教师编号", "staff_no": "工号", "staff_name": "姓名", "from_school_code": "派出学校代码",
    "to_school_code": "接收学校代码", "mode": "交流方式", "plan_id": "轮岗计划编号",
    "from_district_code": "派出区县代码", "to_district_code": "接收区县代码", "created_by": "创建人",
    "version": "版本号", "home_district_code": "任职区县代码", "current": "是否在册",
    # studio members
    "studio_id": "工作室编号", "joined_on": "加入日期", "left_on": "离开日期", "role": "角色", "name": "名称",
    # schools, staff, activities
    "code": "代码", "stage": "学段", "locality": "城乡类别", "primary_enrollment": "小学在校生数",
    "junior_enrollment": "初中在校生数", "senior_enrollment": "高中在校生数", "home_school_code": "任职学校代码",
    "section": "任教学段", "subject": "学科", "backbone_level": "骨干级别", "in_post_since": "现岗位起始日期",
    "retirement_date": "退休日期", "kind": "类型", "date": "日期", "title": "标题",
    "teacher_participants": "教师参与人次", "student_participants": "学生参与人次", "pairing_id": "结对编号",
    # overview
    "district_code": "区县代码", "district_name": "区县名称", "block": "类别", "metric": "指标", "value": "数值",
}

# Headers that mean another thing on one list: the staff list's are the staff import's own
# (services/rotation/imports.py), so an exported staff sheet imports back.
RESOURCE_HEADERS: dict[str, dict[str, str]] = {
    "staff": {"name": "姓名", "role": "岗位"},
    "activities": {"kind": "活动类型"},
}

# Each list's enum columns (a `status` means another thing on each list).
RESOURCE_LABELS: dict[str, dict[str, Mapping[str, str]]] = {
    "schools": {"stage": labels.STAGE, "locality": labels.LOCALITY},
    "pairings": {"status": labels.PAIRING_STATUS},
    "activities": {"kind": labels.ACTIVITY_KIND},
    "staff": {"role": labels.STAFF_ROLE, "section": labels.SECTION, "backbone_level": labels.BACKBONE_LEVEL,
              "status": labels.STAFF_STATUS},
    "rotations": {"mode": labels.ROTATION_MODE, "status": labels.ROTATION_STATUS},
}
# A table of no named list: pairings' and rotations' statuses (they agree where they overlap).
VALUE_LABELS: dict[str, Mapping[str, str]] = {
    "status": {**labels.ROTATION_STATUS, **labels.PAIRING_STATUS}, "mode": labels.ROTATION_MODE,
    "locality": labels.LOCALITY, "stage": labels.STAGE, "backbone_level": labels.BACKBONE_LEVEL,
}

BLOCK_LABELS = {"partnership": "手拉手结对", "rotation": "交流轮岗", "training": "培训研修",
                "primary": "小学校际均衡", "junior": "初中校际均衡"}
METRIC_LABELS = {
    "township_rural_schools": "镇区和乡村学校数", "covered_schools": "已结对覆盖学校数", "coverage_rate": "结对覆盖率",
    "active_pairings": "有效结对数", "activities": "结对活动次数", "teacher_participations": "教师参与人次",
    "student_participations": "学生参与人次", "eligible": "应交流人数", "rotated": "已交流人数",
    "rotation_rate": "交流轮岗比例", "backbone_rotated": "交流县级以上骨干教师人数", "backbone_share": "骨干教师占比",
    "target_rate": "交流比例目标", "target_backbone_share": "骨干占比目标", "meets_target_rate": "交流比例达标",
    "meets_target_backbone_share": "骨干占比达标", "staff": "在岗教职工数", "completed": "五年360学时达标人数",
    "completion_rate": "学时达标率", "studios": "名师工作室数", "sessions": "研修活动次数", "hours": "研修学时",
    "school_count": "学校数", "enrollment": "在校生数", "backbone": "县级以上骨干教师数",
    "mean": "每百名学生县级以上骨干教师数", "cv": "校际差异系数", "target_cv": "差异系数标准",
    "meets_target_cv": "差异系数达标", "schools_below_one": "每百名学生骨干教师数低于1的学校数",
}


def overview_rows(overview: dict[str, Any]) -> list[dict[str, Any]]:
    """The overview as (类别, 指标, 数值) rows; a part that could not be had says so."""
    rows: list[dict[str, Any]] = []
    blocks = [("partnership", overview.get("partnership")), ("rotation", overview.get("rotation")),
              ("training", overview.get("training"))]
    balance = overview.get("balance")
    blocks += [(section, (balance or {}).get(section) if balance else None) for section in ("primary", "junior")]
    for block, values in blocks:
        if values is None:
            rows.append({"block": BLOCK_LABELS[block], "metric": "（数据暂不可用）", "value": None})
            continue
        for key, value in values.items():
            if isinstance(value, (dict, list)):
                continue
            rows.append({"block": BLOCK_LABELS[block], "metric": METRIC_LABELS.get(key, key), "value": value})
    return rows


# Which public list paths can be exported (first segment → whether the path qualifies).
EXPORTABLE = ("pairings", "rotations", "activities", "schools", "staff")


def export_format(request: Request) -> str | None:
    chosen = request.query_params.get("format")
    if chosen is not None:
        if chosen not in ("csv", "xlsx", "json"):
            raise Unprocessable("format must be csv, xlsx or json", slug="validation", extra={
                "errors": [{"field": "query.format", "message": "csv, xlsx or json", "type": "enum"}]})
        return None if chosen == "json" else chosen
    accept = request.headers.get("accept", "")
    if "text/csv" in accept:
        return "csv"
    if XLSX in accept:
        return "xlsx"
    return None


def is_exportable(path: str) -> bool:
    parts = path.strip("/").split("/")
    if len(parts) == 1:
        return parts[0] in EXPORTABLE
    return len(parts) == 3 and parts[0] == "studios" and parts[2] == "members"


def _columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        for key, value in row.items():
            if key not in columns and not isinstance(value, (dict, list)):
                columns.append(key)
    return columns


def is_time_column(column: str) -> bool:
    return column.endswith("_at")


def is_date_column(column: str) -> bool:
    return column == "date" or column.endswith(("_date", "_on", "_since"))


def _moment(column: str, value: str) -> Any:
    """A time as Beijing wall-clock time to the second, a date as a date; other text as it is."""
    try:
        if is_time_column(column):
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is not None:
                moment = moment.astimezone(BEIJING).replace(tzinfo=None)
            return moment.replace(microsecond=0)
        if is_date_column(column) and len(value) == 10:
            return date.fromisoformat(value)
    except ValueError:
        pass
    return value


def _cell(column: str, value: Any, value_labels: Mapping[str, Mapping[str, str]] = VALUE_LABELS) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, str):
        if column in value_labels:
            return value_labels[column].get(value, value)
        return _moment(column, value) if is_time_column(column) or is_date_column(column) else value
    return value


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None,
          resource: str | None = None) -> tuple[list[str], list[list[Any]]]:
    """The header (Chinese) and the cells; `resource` (the list's path, e.g. `staff`) picks the
    enum labels of that list."""
    columns = list(columns or _columns(rows))
    own = RESOURCE_HEADERS.get(resource or "", {})
    header = [own.get(c) or HEADERS.get(c, c) for c in columns]
    value_labels = RESOURCE_LABELS.get(resource, VALUE_LABELS) if resource else VALUE_LABELS
    return header, [[_cell(c, row.get(c), value_labels) for c in columns] for row in rows]


# design.md §5: exports never emit a live formula. Excel, LibreOffice and Google Sheets read a
# text cell that begins with one of these as a formula (or a DDE command): a school named
# `=HYPERLINK(…)` would be a live link in the sheet (OWASP "CSV injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# A plain number written as text ("-3.5") is read as that number, never as a formula: left as is,
# so a negative figure stays a number in the sheet.
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def formula_like(value: str) -> bool:
    return value.startswith(FORMULA_TRIGGERS) and not _PLAIN_NUMBER.fullmatch(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _csv_cell(value: Any) -> Any:
    """Text that a spreadsheet would evaluate gets the `'` prefix that makes it text."""
    return "'" + value if isinstance(value, str) and formula_like(value) else value


def render_csv(header: list[str], body: Iterable[list[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([_csv_cell(v) for v in header])
    writer.writerows([_csv_cell(v) for v in row] for row in body)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")  # the BOM makes Excel read UTF-8


def _xlsx_cell(worksheet: Any, value: Any) -> Any:
    """Numbers and dates as themselves; everything else as a string cell (openpyxl would make a
    formula of text beginning with `=`), quote-prefixed when it looks like a formula so Excel
    keeps it text even after the cell is edited. Control characters XML cannot hold become U+FFFD."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if _is_number(value):
        return value
    if isinstance(value, date):
        cell = WriteOnlyCell(worksheet, value=value)
        cell.number_format = TIME_FORMAT if isinstance(value, datetime) else DATE_FORMAT
        return cell
    text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", str(value))
    cell = WriteOnlyCell(worksheet, value=text)
    cell.data_type = "s"
    if formula_like(text):
        cell.quotePrefix = True
    return cell


def render_xlsx(header: list[str], body: Iterable[list[Any]], sheet: str) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    worksheet = workbook.create_sheet(title=sheet[:31])
    worksheet.append([_xlsx_cell(worksheet, v) for v in header])
    for row in body:
        worksheet.append([_xlsx_cell(worksheet, v) for v in row])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


async def spreadsheet(rows: Sequence[dict[str, Any]], fmt: str, name: str,
                      columns: Sequence[str] | None = None, resource: str | None = None) -> Response:
    header, body = table(rows, columns, resource)
    if fmt == "csv":
        content, media = await asyncio.to_thread(render_csv, header, body), "text/csv; charset=utf-8"
    else:
        content, media = await asyncio.to_thread(render_xlsx, header, body, name), XLSX
    return Response(content, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'})


async def export_list(request: Request, upstream: Upstream, path: str, headers: dict[str, str],
                      fmt: str, *, target: str) -> Response:
    """Follow the service's cursor to the end (bounded) and answer one spreadsheet. `target` is the
    normalised upstream path (gateway/paths.py), `path` the decoded one that names the file."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("format", "limit", "cursor")]
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page_params = [*params, ("limit", "500")] + ([("cursor", cursor)] if cursor else [])
        response = await upstream.send("GET", target, params=page_params,
                                       headers={**headers, "accept": "application/json"})
        if response.status_code != 200:
            return Response(response.content, status_code=response.status_code,
                            media_type=response.headers.get("content-type"))
        page = response.json()
        rows.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor or len(rows) >= MAX_ROWS:
            break
    return await spreadsheet(rows[:MAX_ROWS], fmt, path.strip("/").replace("/", "-"),
                             resource=path.strip("/").split("/", 1)[0])
