"""Bulk import of the staff registry (upsert by staff_no), as district offices send it.

The rotation service does not own schools: before a file is staged, the caller looks the file's
home schools up in the local school directory (services/rotation/directory.py; partnership is
asked only about codes it does not hold) and builds the spec with `staff_spec(...)`. Each staged
row then carries the `home_district_code` of its home school (NULL for a school the registry does
not know, reported per row on `home_school_code`), the merge stores it, and a district
administrator's scope is checked on it in SQL.
"""

from __future__ import annotations

import re
from dataclasses import replace
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from services.common.imports import ImportSpec, parse_rows, validate_rows
from services.rotation.schemas import StaffCreate

ROLE_LABELS = {"教师": "teacher", "专任教师": "teacher", "校长": "principal", "书记": "principal",
               "副校长": "vice_principal", "中层干部": "middle_manager", "中层": "middle_manager",
               "中层管理": "middle_manager"}
SECTION_LABELS = {"小学": "primary", "初中": "junior", "初级中学": "junior", "高中": "senior",
                  "高级中学": "senior"}
BACKBONE_LABELS = {"无": "none", "否": "none", "非骨干": "none", "校级": "school", "校级骨干": "school",
                   "区级": "district", "县级": "district", "区级骨干": "district", "县级骨干": "district",
                   "区县级": "district", "市级": "municipal", "市级骨干": "municipal",
                   "特级": "special_grade", "特级教师": "special_grade"}

# Dates as spreadsheets write them: 2015-09-01, 2015/9/1, 2015.9.1, 2015年9月1日, 20150901.
_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


def _date_text(value: Any) -> Any:
    """A date written in a common Chinese office form, in ISO form; anything else unchanged (the
    model then reports it). Impossible dates (2015-02-30) stay impossible."""
    if not isinstance(value, str):
        return value
    match = _DATE.match(value.strip()) or _COMPACT_DATE.match(value.strip())
    if match is None:
        return value
    year, month, day = match.groups()
    return f"{year}-{int(month):02d}-{int(day):02d}"


class StaffImportRow(StaffCreate):
    """A staff row: Chinese labels for role, section and backbone level; unknown columns ignored."""

    model_config = ConfigDict(extra="ignore")

    @field_validator("role", mode="before")
    @classmethod
    def _role_label(cls, value: Any) -> Any:
        return ROLE_LABELS.get(value, value) if isinstance(value, str) else value

    @field_validator("section", mode="before")
    @classmethod
    def _section_label(cls, value: Any) -> Any:
        return SECTION_LABELS.get(value, value) if isinstance(value, str) else value

    @field_validator("backbone_level", mode="before")
    @classmethod
    def _backbone_label(cls, value: Any) -> Any:
        return BACKBONE_LABELS.get(value, value) if isinstance(value, str) else value

    @field_validator("in_post_since", "retirement_date", mode="before")
    @classmethod
    def _office_dates(cls, value: Any) -> Any:
        return _date_text(value)


COLUMNS = ("staff_no", "name", "home_school_code", "home_district_code", "role", "section", "subject",
           "backbone_level", "in_post_since", "retirement_date")


def _values(row: BaseModel, districts: dict[str, str]) -> dict[str, Any]:
    values = {name: (value.value if isinstance(value, Enum) else value)
              for name, value in row.model_dump(mode="python").items() if name in COLUMNS}
    values["home_district_code"] = districts.get(values["home_school_code"])  # None: unknown school
    return values


STAFF = ImportSpec(
    kind="staff",
    model=StaffImportRow,
    aliases={
        "工号": "staff_no", "教职工号": "staff_no", "教师编号": "staff_no", "姓名": "name",
        "任职学校代码": "home_school_code", "学校代码": "home_school_code", "学校标识码": "home_school_code",
        "岗位": "role", "职务": "role", "任教学段": "section", "学段": "section", "学科": "subject",
        "任教学科": "subject", "骨干级别": "backbone_level", "骨干教师级别": "backbone_level",
        "现岗位起始日期": "in_post_since", "任职起始日期": "in_post_since", "退休日期": "retirement_date",
    },
    key=("staff_no",),
    columns=COLUMNS,
    column_types={"in_post_since": "date", "retirement_date": "date"},
    prepare=lambda row: _values(row, {}),  # replaced per request by staff_spec(districts)
    checks_sql=[("home_school_code", """
        SELECT s.row_no, 'unknown school ' || s.home_school_code AS message
        FROM staged s WHERE s.home_district_code IS NULL""")],
    # Status is not a column of the file: an upsert leaves a retired or departed person as they are.
    merge_sql="""
        INSERT INTO rotation.staff AS t (id, staff_no, name, home_school_code, home_district_code, role, section,
                                         subject, backbone_level, in_post_since, retirement_date)
        SELECT gen_random_uuid(), staff_no, name, home_school_code, home_district_code, role, section, subject,
               backbone_level, in_post_since, retirement_date
        FROM staged ORDER BY row_no
        ON CONFLICT (staff_no) DO UPDATE SET
            name = excluded.name, home_school_code = excluded.home_school_code,
            home_district_code = excluded.home_district_code, role = excluded.role, section = excluded.section,
            subject = excluded.subject, backbone_level = excluded.backbone_level,
            in_post_since = excluded.in_post_since, retirement_date = excluded.retirement_date,
            version = t.version + 1, updated_at = now()
        RETURNING (xmax = 0) AS inserted, t.staff_no AS key, to_jsonb(t) AS state""",
    schema="rotation",
    entity="staff",
)


def staff_import_schools(body: bytes, content_type: str) -> set[str]:
    """The home school codes of the file's valid rows, to look up before the import runs."""
    valid, _ = validate_rows(STAFF, parse_rows(body, content_type, STAFF.aliases))
    return {values["home_school_code"] for _, values in valid}


def staff_spec(districts: dict[str, str]) -> ImportSpec:
    """The staff spec for one import, with the home schools' districts looked up beforehand."""
    return replace(STAFF, prepare=lambda row: _values(row, districts))


# A district administrator imports only staff whose home school is in their districts, and may
# not take over (move) someone whose current home district is another's.
STAFF_SCOPE_SQL = """
    SELECT s.row_no FROM staged s LEFT JOIN rotation.staff e ON e.staff_no = s.staff_no
    WHERE NOT (s.home_district_code = ANY(:districts))
       OR (e.staff_no IS NOT NULL AND NOT (e.home_district_code = ANY(:districts)))"""
