"""The template an office downloads to fill an import: `GET /v1/imports/{kind}/template`.

Made from the kind's own ImportSpec, so it cannot drift from what the import accepts: the Chinese
header of each column is the first of the spec's aliases for it, and the instructions (whether a
column is required, its format, its allowed values) come from the row model's JSON schema and the
shared Chinese labels (services/common/labels.py). The XLSX has the header and an example row on
its first sheet (code and number columns formatted as text, so 0101 keeps its zero) and the
instructions on a second sheet, 说明; the CSV is the header and the example row, UTF-8 with BOM.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from services.common.vocabulary import CODE_PATTERN

if TYPE_CHECKING:
    from services.common.imports import ImportSpec

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
INSTRUCTIONS_SHEET = "说明"
INSTRUCTIONS_HEADER = ["列名", "英文列名", "是否必填", "格式", "可选值", "备注"]
GENERAL_NOTES = (
    "第 1 行是列名，中文或英文列名均可；第 2 行是示例，导入前请改写或删除。",
    "每行一条记录，空行会被忽略；错误报告中的行号与 Excel 左侧的行号一致。",
    "可选值填中文或英文均可；日期可填 Excel 日期或 2024-09-01、2024/9/1、2024年9月1日。",
)
DATE_FORMAT = "日期，如 2024-09-01"


@dataclass(frozen=True)
class Template:
    """What the spec alone cannot say: the kind's name, an example row, the enum labels."""

    title: str                                   # the kind in Chinese: 教职工 → 教职工导入模板.xlsx
    example: Mapping[str, Any]                   # field -> the value an office would type (str, int, date)
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # field -> value -> 中文
    notes: Mapping[str, str] = field(default_factory=dict)                 # field -> 备注


@dataclass(frozen=True)
class Column:
    name: str          # the field, also accepted as the header
    header: str        # the Chinese header the template writes
    required: bool
    format: str
    allowed: str
    note: str
    text: bool         # formatted as text in the sheet (codes, numbers written as text)
    is_date: bool


def columns(spec: ImportSpec) -> list[Column]:
    template = spec.template
    assert template is not None
    schema = spec.model.model_json_schema()
    required = set(schema.get("required", []))
    result = []
    for name in spec.columns:
        prop = _plain(schema["properties"][name], schema)
        labels = template.labels.get(name, {})
        values = prop.get("enum")
        allowed = "、".join(f"{labels.get(v, v)}（{v}）" for v in values) if values else ""
        header = next((alias for alias, target in spec.aliases.items() if target == name), name)
        result.append(Column(name=name, header=header, required=name in required, format=_format(prop),
                             allowed=allowed, note=template.notes.get(name, ""),
                             text=prop.get("type") == "string" and not values and prop.get("format") != "date",
                             is_date=prop.get("format") == "date"))
    return result


def _plain(prop: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The property without its `null` alternative and with its `$ref` resolved."""
    if "anyOf" in prop:
        options = [p for p in prop["anyOf"] if p.get("type") != "null"]
        numbers = [p for p in options if p.get("type") == "number"]  # a Decimal: number or numeric string
        prop = {**(numbers or options)[0], **{k: v for k, v in prop.items() if k != "anyOf"}}
    if "$ref" in prop:
        prop = {**schema["$defs"][prop["$ref"].rsplit("/", 1)[1]], **{k: v for k, v in prop.items() if k != "$ref"}}
    return prop


def _format(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return "可选值之一"
    if prop.get("format") == "date":
        return DATE_FORMAT
    if prop.get("format") == "uuid":
        return "平台编号（UUID），如 3f2b8c1e-6d4a-4c2e-9b7f-1a2b3c4d5e6f"
    kind = prop.get("type")
    if kind == "integer":
        return "整数" + (f"，不小于 {prop['minimum']}" if "minimum" in prop else "")
    if kind == "number":
        low = f"大于 {_number(prop['exclusiveMinimum'])}" if "exclusiveMinimum" in prop else ""
        high = f"不大于 {_number(prop['maximum'])}" if "maximum" in prop else ""
        bounds = " 且".join(b for b in (low, high) if b)
        return "数字，最多两位小数" + (f"，{bounds}" if bounds else "")
    parts = ["文本"]
    if "maxLength" in prop:
        parts.append(f"最多 {prop['maxLength']} 字")
    if prop.get("pattern") == CODE_PATTERN:
        parts.append("仅字母、数字、- 和 _")
    elif prop.get("pattern") == "^[1-8][0-9]{5}$":
        parts.append("6 位行政区划代码（GB/T 2260）")
    return "，".join(parts)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _example(spec: ImportSpec, column: Column) -> Any:
    assert spec.template is not None
    return spec.template.example.get(column.name)


def render_csv(spec: ImportSpec) -> bytes:
    cols = columns(spec)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([c.header for c in cols])
    writer.writerow(["" if (v := _example(spec, c)) is None else
                     (v.isoformat() if isinstance(v, date) else v) for c in cols])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def render_xlsx(spec: ImportSpec) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    assert spec.template is not None
    cols = columns(spec)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = spec.template.title
    bold = Font(bold=True)
    for index, column in enumerate(cols, start=1):
        letter = get_column_letter(index)
        head = sheet.cell(row=1, column=index, value=column.header)
        head.font = bold
        head.number_format = "@"
        cell = sheet.cell(row=2, column=index, value=_example(spec, column))
        # The whole column keeps the format, so rows typed below the example are text or dates too.
        fmt = "@" if column.text else "yyyy-mm-dd" if column.is_date else "General"
        cell.number_format = fmt
        sheet.column_dimensions[letter].number_format = fmt
        sheet.column_dimensions[letter].width = max(14, 2 * len(column.header) + 4)
    sheet.freeze_panes = "A2"
    notes = workbook.create_sheet(INSTRUCTIONS_SHEET)
    notes.append(INSTRUCTIONS_HEADER)
    for cell in notes[1]:
        cell.font = bold
    for column in cols:
        notes.append([column.header, column.name, "必填" if column.required else "选填", column.format,
                      column.allowed, column.note])
    notes.append([])
    for line in GENERAL_NOTES:
        notes.append([line])
    for letter, width in zip("ABCDEF", (16, 20, 10, 36, 60, 30)):
        notes.column_dimensions[letter].width = width
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


_made: dict[tuple[str, str, str], bytes] = {}


def render(spec: ImportSpec, fmt: str) -> bytes:
    """The template's bytes, made once per process, kind and format (they depend on the code only)."""
    key = (spec.schema, spec.kind, fmt)
    if key not in _made:
        _made[key] = render_xlsx(spec) if fmt == "xlsx" else render_csv(spec)
    return _made[key]


def disposition(spec: ImportSpec, fmt: str) -> str:
    """An ASCII file name for old clients and the Chinese one (RFC 5987 `filename*`) for the rest."""
    assert spec.template is not None
    chinese = f"{spec.template.title}导入模板.{fmt}"
    return f"attachment; filename=\"{spec.kind}-template.{fmt}\"; filename*=UTF-8''{quote(chinese)}"


def media_type(fmt: str) -> str:
    return XLSX if fmt == "xlsx" else "text/csv; charset=utf-8"
