"""Bulk imports of the rotation service, as district offices send them: the staff registry (upsert
by staff_no) and historical rotation records (by staff_no and start date).

The rotation service does not own schools: once a file is staged, its resolve step reads each
school's district from the local school directory (services/rotation/directory.py; partnership is
asked only about codes it does not hold yet) and writes them into the staged rows (NULL for a
school the registry does not know, reported per row). The merge stores them, and an importer's
district scope is checked on them in SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from enum import Enum
from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common import fast_rows, labels
from services.common.import_template import Template
from services.common.imports import ImportContext, ImportSpec
from services.common.outbox import CreatedRecords
from services.common.vocabulary import CODE_MAX_LENGTH, CODE_PATTERN, SchoolCode, office_date
from services.rotation.clients import PartnershipClient
from services.rotation.directory import school_districts
from services.rotation.schemas import (
    BackboneLevel,
    RotationMode,
    RotationStatus,
    Section,
    StaffCreate,
    StaffNo,
    StaffRole,
)

ROLE_LABELS = {"教师": "teacher", "专任教师": "teacher", "校长": "principal", "书记": "principal",
               "副校长": "vice_principal", "中层干部": "middle_manager", "中层": "middle_manager",
               "中层管理": "middle_manager"}
SECTION_LABELS = {"小学": "primary", "初中": "junior", "初级中学": "junior", "高中": "senior",
                  "高级中学": "senior"}
BACKBONE_LABELS = {"无": "none", "否": "none", "非骨干": "none", "校级": "school", "校级骨干": "school",
                   "区级": "district", "县级": "district", "区级骨干": "district", "县级骨干": "district",
                   "区县级": "district", "市级": "municipal", "市级骨干": "municipal",
                   "特级": "special_grade", "特级教师": "special_grade"}
STAFF_LABELS = {"role": ROLE_LABELS, "section": SECTION_LABELS, "backbone_level": BACKBONE_LABELS}


def from_label(labels: Mapping[str, str], value: Any) -> Any:
    """A field's Chinese label (专任教师, 区级骨干, …) as its value; anything else is validated as given."""
    return labels.get(value, value) if isinstance(value, str) else value



class StaffImportRow(StaffCreate):
    """A staff row: Chinese labels for role, section and backbone level; unknown columns ignored."""

    model_config = ConfigDict(extra="ignore")

    @field_validator("role", "section", "backbone_level", mode="before")
    @classmethod
    def _labels(cls, value: Any, info: ValidationInfo) -> Any:
        return from_label(STAFF_LABELS[info.field_name], value)

    @field_validator("in_post_since", "retirement_date", mode="before")
    @classmethod
    def _office_dates(cls, value: Any) -> Any:
        return office_date(value)


COLUMNS = ("staff_no", "name", "home_school_code", "role", "section", "subject", "backbone_level",
           "in_post_since", "retirement_date")


def _values(row: BaseModel) -> dict[str, Any]:
    return {name: (value.value if isinstance(value, Enum) else value)
            for name, value in row.model_dump(mode="python").items() if name in COLUMNS}


async def fill_school_districts(session: AsyncSession, context: ImportContext, *, school: str,
                                district: str) -> None:
    """Resolve step: the district of each staged row's `school` column, from the local school
    directory; partnership is asked only about the codes the directory does not hold yet. Rows
    whose district the staging filled already (`staged_sql`) are left as they are."""
    codes = set((await session.execute(text(f"SELECT DISTINCT {school} FROM staged WHERE {district} IS NULL"))
                 ).scalars())
    if not codes:
        return
    districts = await school_districts(session, PartnershipClient(context.upstreams["partnership"]), codes)
    known = sorted(code for code in codes if code in districts)
    await session.execute(text(
        f"UPDATE staged s SET {district} = m.district "
        "FROM unnest(CAST(:codes AS text[]), CAST(:districts AS text[])) AS m(code, district) "
        f"WHERE s.{school} = m.code AND s.{district} IS NULL"),
        {"codes": known, "districts": [districts[c] for c in known]})


# An importer limited to districts imports only staff whose home school is in their districts,
# and may not take over (move) someone whose current home district is another's.
STAFF_SCOPE_SQL = """
    SELECT s.row_no FROM staged s LEFT JOIN rotation.staff e ON e.staff_no = s.staff_no
    WHERE NOT (s.home_district_code = ANY(:districts))
       OR (e.staff_no IS NOT NULL AND NOT (e.home_district_code = ANY(:districts)))"""


# The districts were resolved in an earlier transaction; a school moved by the directory's consumer
# since then would leave its imported staff in the old district (the consumer's move of the
# school's staff cannot see rows not committed yet). Locked FOR SHARE, as `find_school` does for a
# single write, the schools' rows either moved before (read here, new district) or wait for the
# merge (the consumer then moves its rows too). Rows are locked in code order, as the consumer
# locks its page's schools (services/rotation/directory.py), so the two never deadlock.
SCHOOL_DISTRICTS_FOR_SHARE = """
    WITH locked AS (
        SELECT code, district_code FROM rotation.school_directory
        WHERE code IN (SELECT DISTINCT home_school_code FROM staged) ORDER BY code FOR SHARE)
    UPDATE staged s SET home_district_code = l.district_code FROM locked l
    WHERE s.home_school_code = l.code AND s.home_district_code IS DISTINCT FROM l.district_code"""


# The staff merge: insert new staff_nos, update stored ones (a row equal to the stored record is left
# alone: reported `unchanged`, nothing fed, so a registry sent again writes nothing). Status is not
# a column of the file: an upsert leaves a retired or departed person as they are.
STAFF_UPSERT = """
        INSERT INTO rotation.staff AS t (id, staff_no, name, home_school_code, home_district_code, role, section,
                                         subject, backbone_level, in_post_since, retirement_date)
        SELECT gen_random_uuid(), staff_no, name, home_school_code, home_district_code, role, section, subject,
               backbone_level, in_post_since, retirement_date
        FROM {rows} ORDER BY row_no
        ON CONFLICT (staff_no) DO UPDATE SET
            name = excluded.name, home_school_code = excluded.home_school_code,
            home_district_code = excluded.home_district_code, role = excluded.role, section = excluded.section,
            subject = excluded.subject, backbone_level = excluded.backbone_level,
            in_post_since = excluded.in_post_since, retirement_date = excluded.retirement_date,
            version = t.version + 1, updated_at = now()
        WHERE (t.name, t.home_school_code, t.home_district_code, t.role, t.section, t.subject, t.backbone_level,
               t.in_post_since, t.retirement_date)
              IS DISTINCT FROM (excluded.name, excluded.home_school_code, excluded.home_district_code,
                                excluded.role, excluded.section, excluded.subject, excluded.backbone_level,
                                excluded.in_post_since, excluded.retirement_date)
        RETURNING (xmax = 0) AS inserted, t.staff_no AS key, to_jsonb(t) AS state"""


STAFF = ImportSpec(
    district_columns=("home_district_code",),
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
    prepare=_values,
    extra_columns={"home_district_code": "text"},
    # Most districts come with the staging (one hash join on the directory, not an UPDATE of every row).
    staged_join="LEFT JOIN rotation.school_directory d ON d.code = converted.v_home_school_code",
    staged_sql={"home_district_code": "d.district_code"},
    resolve=partial(fill_school_districts, school="home_school_code", district="home_district_code"),
    lock_sql=[SCHOOL_DISTRICTS_FOR_SHARE],
    upstreams=("partnership",),
    scope_sql=STAFF_SCOPE_SQL,
    checks_sql=[("home_school_code", """
        SELECT s.row_no, 'unknown school ' || s.home_school_code AS message
        FROM staged s WHERE s.home_district_code IS NULL""")],
    merge_sql=STAFF_UPSERT.format(rows="staged"),
    # The usual case in plain statements (services/common/import_model.py): the stored staff
    # updated as above, then the new ones inserted with the ids staged for them.
    update_sql=STAFF_UPSERT.format(rows="staged s WHERE EXISTS (SELECT 1 FROM rotation.staff e "
                                        "WHERE e.staff_no = s.staff_no)"),
    insert_sql="""
        INSERT INTO rotation.staff (id, staff_no, name, home_school_code, home_district_code, role, section,
                                    subject, backbone_level, in_post_since, retirement_date)
        SELECT s.id, s.staff_no, s.name, s.home_school_code, s.home_district_code, s.role, s.section, s.subject,
               s.backbone_level, s.in_post_since, s.retirement_date
        FROM staged s WHERE NOT EXISTS (SELECT 1 FROM rotation.staff e WHERE e.staff_no = s.staff_no)""",
    created=CreatedRecords(table="rotation.staff", key="t.staff_no", state="to_jsonb(t)"),
    schema="rotation",
    entity="staff",
    # StaffImportRow's fields, for the common row (the model decides the rest and words the errors).
    fast={"staff_no": fast_rows.text(64), "name": fast_rows.text(200),
          "home_school_code": fast_rows.text(CODE_MAX_LENGTH, pattern=CODE_PATTERN),
          "role": fast_rows.choice(StaffRole, ROLE_LABELS), "section": fast_rows.choice(Section, SECTION_LABELS),
          "subject": fast_rows.text(100), "backbone_level": fast_rows.choice(BackboneLevel, BACKBONE_LABELS),
          "in_post_since": fast_rows.iso_date(office_date), "retirement_date": fast_rows.iso_date(office_date)},
    template=Template(
        title="教职工",
        example={"staff_no": "T20180001", "name": "张伟", "home_school_code": "11010501", "role": "教师",
                 "section": "小学", "subject": "数学", "backbone_level": "区级骨干", "in_post_since": date(2015, 9, 1)},
        labels={"role": labels.STAFF_ROLE, "section": labels.SECTION, "backbone_level": labels.BACKBONE_LEVEL},
        notes={"home_school_code": "平台中已登记的学校", "retirement_date": "未定可空"}),
)


# Historical rotation records from district systems ------------------------------------------

MODE_LABELS = {"全职交流": "full_time", "全职": "full_time", "兼职交流": "part_time", "兼职": "part_time",
               "走教": "part_time", "学科指导": "subject_guidance", "学科指导交流": "subject_guidance"}
STATUS_LABELS = {"计划": "planned", "计划中": "planned", "拟交流": "planned", "已批准": "approved", "批准": "approved",
                 "进行中": "active", "交流中": "active", "在岗": "active", "已完成": "completed", "完成": "completed",
                 "期满": "completed", "已撤回": "withdrawn", "撤回": "withdrawn", "取消": "withdrawn"}
ROTATION_LABELS = {"mode": MODE_LABELS, "status": STATUS_LABELS}


class RotationImportRow(BaseModel):
    """One rotation as a district system records it; unknown columns (姓名, 备注, …) are ignored."""

    model_config = ConfigDict(extra="ignore")

    staff_no: StaffNo
    to_school_code: SchoolCode
    mode: RotationMode
    start_date: date
    end_date: date
    status: RotationStatus

    @field_validator("mode", "status", mode="before")
    @classmethod
    def _labels(cls, value: Any, info: ValidationInfo) -> Any:
        return from_label(ROTATION_LABELS[info.field_name], value)

    @field_validator("start_date", "end_date", mode="before")
    @classmethod
    def _office_dates(cls, value: Any) -> Any:
        return office_date(value)

    @model_validator(mode="after")
    def _dates_in_order(self) -> RotationImportRow:
        if self.end_date < self.start_date:
            raise ValueError("end_date must not be before start_date")
        return self


ROTATION_COLUMNS = ("staff_no", "to_school_code", "mode", "start_date", "end_date", "status")
# A stored rotation with exactly these facts is this row imported before: a no-op, not a conflict.
_SAME_FACTS = ("r.start_date = s.start_date AND r.end_date = s.end_date AND r.to_school_code = s.to_school_code "
               "AND r.mode = s.mode AND r.status = s.status")
# ex_rotations_staff_overlap as a row check: rotations that are not withdrawn may not share a day.
OVERLAP_SQL = f"""
    SELECT s.row_no, 'overlaps the rotation of ' || s.staff_no || ' from ' || r.start_date || ' to '
           || r.end_date || ' (' || r.status || ')' AS message
    FROM staged s JOIN rotation.rotations r ON r.staff_id = s.staff_id AND r.status <> 'withdrawn'
    WHERE s.status <> 'withdrawn'
      AND daterange(r.start_date, r.end_date, '[]') && daterange(s.start_date, s.end_date, '[]')
      AND NOT ({_SAME_FACTS})"""

ROTATIONS = ImportSpec(
    district_columns=("from_district_code", "to_district_code"),
    kind="rotations",
    model=RotationImportRow,
    aliases={
        "工号": "staff_no", "教职工号": "staff_no", "教师编号": "staff_no",
        "交流学校代码": "to_school_code", "流入学校代码": "to_school_code", "交流学校": "to_school_code",
        "交流方式": "mode", "开始日期": "start_date", "交流开始日期": "start_date",
        "结束日期": "end_date", "交流结束日期": "end_date", "状态": "status", "交流状态": "status",
    },
    key=("staff_no", "start_date"),
    columns=ROTATION_COLUMNS,
    column_types={"start_date": "date", "end_date": "date"},
    prepare=lambda row: {c: (v.value if isinstance(v, Enum) else v)
                         for c, v in ((c, getattr(row, c)) for c in ROTATION_COLUMNS)},
    extra_columns={"staff_id": "uuid", "from_school_code": "text", "from_district_code": "text",
                   "to_district_code": "text"},
    # The staff member's home school is where the rotation comes from.
    resolve_sql=["""
        UPDATE staged s SET staff_id = t.id, from_school_code = t.home_school_code,
                            from_district_code = t.home_district_code
        FROM rotation.staff t WHERE t.staff_no = s.staff_no"""],
    resolve=partial(fill_school_districts, school="to_school_code", district="to_district_code"),
    upstreams=("partnership",),
    checks_sql=[
        ("staff_no", "SELECT row_no, 'unknown staff member ' || staff_no AS message FROM staged "
                     "WHERE staff_id IS NULL"),
        ("to_school_code", "SELECT row_no, 'unknown school ' || to_school_code AS message FROM staged "
                           "WHERE to_district_code IS NULL"),
        ("to_school_code", "SELECT row_no, 'equals the home school of ' || staff_no AS message FROM staged "
                           "WHERE to_school_code = from_school_code"),
        ("start_date", OVERLAP_SQL),
        ("start_date", """
            SELECT b.row_no, 'overlaps row ' || min(a.row_no) || ' of this file' AS message
            FROM staged a JOIN staged b ON a.staff_no = b.staff_no AND a.row_no < b.row_no
            WHERE a.status <> 'withdrawn' AND b.status <> 'withdrawn'
              AND daterange(a.start_date, a.end_date, '[]') && daterange(b.start_date, b.end_date, '[]')
            GROUP BY b.row_no"""),
    ],
    # ON CONFLICT DO NOTHING also covers the exclusion constraint: a rotation stored by someone
    # else between the checks and the merge skips ours, and the recheck reports it.
    recheck_after_merge=True,
    merge_sql=f"""
        INSERT INTO rotation.rotations AS t (id, staff_id, from_school_code, from_district_code, to_school_code,
                                             to_district_code, mode, start_date, end_date, status, created_by)
        SELECT gen_random_uuid(), s.staff_id, s.from_school_code, s.from_district_code, s.to_school_code,
               s.to_district_code, s.mode, s.start_date, s.end_date, s.status, :actor
        FROM staged s
        WHERE NOT EXISTS (SELECT 1 FROM rotation.rotations r WHERE r.staff_id = s.staff_id AND {_SAME_FACTS})
        ORDER BY s.row_no
        ON CONFLICT DO NOTHING
        RETURNING true AS inserted, t.id::text AS key, to_jsonb(t) AS state""",
    merge_ctes=""",
        history AS (INSERT INTO rotation.rotation_transitions (rotation_id, from_status, to_status, actor, comment)
                    SELECT CAST(state->>'id' AS uuid), NULL, state->>'status', :actor, 'imported' FROM merged)""",
    schema="rotation",
    entity="rotation",
    scope_sql="""
        SELECT row_no FROM staged
        WHERE from_district_code IS NOT NULL AND NOT (from_district_code = ANY(:districts))""",
    template=Template(
        title="交流轮岗记录",
        example={"staff_no": "T20180001", "to_school_code": "11010523", "mode": "全职交流",
                 "start_date": date(2024, 9, 1), "end_date": date(2025, 8, 31), "status": "已完成"},
        labels={"mode": labels.ROTATION_MODE, "status": labels.ROTATION_STATUS},
        notes={"staff_no": "平台中已登记的教职工", "to_school_code": "平台中已登记的学校，不能是其任职学校"}),
)

SPECS = {STAFF.kind: STAFF, ROTATIONS.kind: ROTATIONS}
