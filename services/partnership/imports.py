"""Bulk import of the school registry (upsert by school code), as district offices send it."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, field_validator

from services.common import labels
from services.common.import_template import Template
from services.common.imports import ImportSpec
from services.partnership.schemas import SchoolCreate

STAGE_LABELS = {"小学": "primary", "初中": "junior", "初级中学": "junior", "九年一贯制": "nine_year",
                "九年一贯制学校": "nine_year", "高中": "senior", "高级中学": "senior", "完全中学": "complete_secondary",
                "十二年一贯制": "twelve_year", "十二年一贯制学校": "twelve_year"}
LOCALITY_LABELS = {"城区": "urban", "城市": "urban", "镇区": "township", "乡镇": "township", "乡村": "rural",
                   "农村": "rural"}


class SchoolImportRow(SchoolCreate):
    """A school row: Chinese labels for stage and locality are accepted; unknown columns ignored."""

    model_config = ConfigDict(extra="ignore")

    @field_validator("stage", mode="before")
    @classmethod
    def _stage_label(cls, value: Any) -> Any:
        return STAGE_LABELS.get(value, value) if isinstance(value, str) else value

    @field_validator("locality", mode="before")
    @classmethod
    def _locality_label(cls, value: Any) -> Any:
        return LOCALITY_LABELS.get(value, value) if isinstance(value, str) else value

    @field_validator("primary_enrollment", "junior_enrollment", "senior_enrollment", mode="before")
    @classmethod
    def _blank_is_zero(cls, value: Any) -> Any:
        return 0 if value in (None, "") else value


# An importer limited to districts imports only schools of their districts (new and existing alike).
SCHOOL_SCOPE_SQL = """
    SELECT s.row_no FROM staged s LEFT JOIN partnership.schools e ON e.code = s.code
    WHERE NOT (s.district_code = ANY(:districts))
       OR (e.code IS NOT NULL AND NOT (e.district_code = ANY(:districts)))"""


COLUMNS = ("code", "name", "district_code", "stage", "locality", "primary_enrollment", "junior_enrollment",
           "senior_enrollment")

SCHOOLS = ImportSpec(
    district_columns=("district_code",),
    kind="schools",
    model=SchoolImportRow,
    aliases={
        "学校代码": "code", "学校标识码": "code", "代码": "code", "学校名称": "name", "名称": "name",
        "区县代码": "district_code", "所属区县代码": "district_code", "行政区划代码": "district_code",
        "学段": "stage", "办学类型": "stage", "城乡类别": "locality", "城乡分类": "locality",
        "小学在校生数": "primary_enrollment", "初中在校生数": "junior_enrollment",
        "高中在校生数": "senior_enrollment",
    },
    key=("code",),
    columns=COLUMNS,
    column_types={"primary_enrollment": "integer", "junior_enrollment": "integer", "senior_enrollment": "integer"},
    prepare=lambda row: {c: getattr(row, c).value if hasattr(getattr(row, c), "value") else getattr(row, c)
                         for c in COLUMNS},
    checks_sql=[("district_code", """
        SELECT s.row_no, 'unknown district ' || s.district_code AS message
        FROM staged s LEFT JOIN partnership.districts d ON d.code = s.district_code
        WHERE d.code IS NULL""")],
    merge_sql="""
        INSERT INTO partnership.schools AS t (code, name, district_code, stage, locality,
                                              primary_enrollment, junior_enrollment, senior_enrollment)
        SELECT code, name, district_code, stage, locality, primary_enrollment, junior_enrollment, senior_enrollment
        FROM staged ORDER BY row_no
        ON CONFLICT (code) DO UPDATE SET
            name = excluded.name, district_code = excluded.district_code, stage = excluded.stage,
            locality = excluded.locality, primary_enrollment = excluded.primary_enrollment,
            junior_enrollment = excluded.junior_enrollment, senior_enrollment = excluded.senior_enrollment,
            version = t.version + 1, updated_at = now()
        RETURNING (xmax = 0) AS inserted, t.code AS key, to_jsonb(t) AS state""",
    schema="partnership",
    entity="school",
    scope_sql=SCHOOL_SCOPE_SQL,
    template=Template(
        title="学校",
        example={"code": "11010501", "name": "北京市朝阳区实验小学", "district_code": "110105", "stage": "小学",
                 "locality": "城区", "primary_enrollment": 1200, "junior_enrollment": 0, "senior_enrollment": 0},
        labels={"stage": labels.STAGE, "locality": labels.LOCALITY},
        notes={"primary_enrollment": "空白按 0 计", "junior_enrollment": "空白按 0 计",
               "senior_enrollment": "空白按 0 计"}),
)

SPECS = {SCHOOLS.kind: SCHOOLS}

