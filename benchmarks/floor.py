"""The floor: the district overview's figures computed by plain SQL straight on the services'
tables (a benchmark may read every schema; the platform itself never does), and the check that the
platform's figures equal them. It is a floor: the fastest honest SQL we know for exactly those
figures, using the same covering ledger index as the platform (checked with EXPLAIN, `check_plans`).

The SQL is written from docs/design.md §4, not copied from the services, so an equal answer means
two independent readings of the rules agree. Four statements, each for one district (`$1`) or all
of them (`$1` NULL): partnership (§4.1, §4.2), rotation (§4.3, §4.4), training (§4.5 and the studio
figures) and the backbone balance (§4.6). The balance's CV is computed exactly enough to compare
at 6 places: CV² = P·Σ(B_i²/P_i)/B² − 1 (the §4.6 definitions, expanded), in numeric with 30
decimals, rounded half up like the gateway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg

from benchmarks.data import COUNTY_AND_ABOVE

THRESHOLD = Decimal(360)
WINDOW_YEARS = 5

PARTNERSHIP = """
WITH d AS (SELECT code FROM partnership.districts WHERE $1::text IS NULL OR code = $1::text),
tr AS (
    SELECT s.district_code, count(*) AS township_rural_schools,
           count(*) FILTER (WHERE EXISTS (
               SELECT 1 FROM partnership.pairings p
               WHERE p.partner_school_code = s.code AND p.status = 'active'
                 AND $2::date BETWEEN p.start_date AND p.end_date)) AS covered_schools
    FROM partnership.schools s
    WHERE s.locality IN ('township', 'rural') AND ($1::text IS NULL OR s.district_code = $1::text)
    GROUP BY s.district_code),
pd AS (  -- a pairing counts once for every district with a school on either side
    SELECT DISTINCT s.district_code, p.id, p.status, p.start_date, p.end_date
    FROM partnership.pairings p
    JOIN partnership.schools s ON s.code = p.lead_school_code OR s.code = p.partner_school_code
    WHERE $1::text IS NULL OR s.district_code = $1::text),
ap AS (
    SELECT district_code, count(*) AS active_pairings FROM pd
    WHERE status = 'active' AND $2::date BETWEEN start_date AND end_date
    GROUP BY district_code),
act AS (
    SELECT pd.district_code, count(*) AS activities, sum(a.teacher_participants) AS teacher_participations,
           sum(a.student_participants) AS student_participations
    FROM pd JOIN partnership.activities a ON a.pairing_id = pd.id
    WHERE a.date BETWEEN $3::date AND $4::date
    GROUP BY pd.district_code)
SELECT d.code AS district_code,
       coalesce(tr.township_rural_schools, 0) AS township_rural_schools,
       coalesce(tr.covered_schools, 0) AS covered_schools,
       coalesce(ap.active_pairings, 0) AS active_pairings,
       coalesce(act.activities, 0) AS activities,
       coalesce(act.teacher_participations, 0) AS teacher_participations,
       coalesce(act.student_participations, 0) AS student_participations
FROM d LEFT JOIN tr ON tr.district_code = d.code LEFT JOIN ap ON ap.district_code = d.code
LEFT JOIN act ON act.district_code = d.code
"""

ROTATION = """
WITH st AS (
    SELECT s.id, s.home_district_code, s.role, s.status, s.backbone_level, s.in_post_since, s.retirement_date,
           coalesce(p.min_years_teacher, 6) AS min_teacher, coalesce(p.min_years_cadre, 6) AS min_cadre,
           coalesce(p.retirement_exempt_years, 5) AS exempt
    FROM rotation.staff s LEFT JOIN rotation.rotation_policies p ON p.district_code = s.home_district_code
    WHERE $1::text IS NULL OR s.home_district_code = $1::text),
el AS (  -- eligible on 1 Sept Y ($2)
    SELECT home_district_code, count(*) AS eligible FROM st
    WHERE status = 'active'
      AND (in_post_since + make_interval(years => CASE WHEN role = 'teacher' THEN min_teacher ELSE min_cadre END)
          )::date <= $2::date
      AND (retirement_date IS NULL OR retirement_date > ($2::date + make_interval(years => exempt))::date)
    GROUP BY home_district_code),
ro AS (  -- distinct people with a counted rotation starting in the year
    SELECT st.home_district_code, count(DISTINCT st.id) AS rotated,
           count(DISTINCT st.id) FILTER (WHERE st.backbone_level = ANY($4::text[])) AS backbone_rotated
    FROM st JOIN rotation.rotations r ON r.staff_id = st.id
    WHERE r.status IN ('approved', 'active', 'completed') AND r.start_date BETWEEN $2::date AND $3::date
    GROUP BY st.home_district_code)
SELECT d.code AS district_code, coalesce(el.eligible, 0) AS eligible, coalesce(ro.rotated, 0) AS rotated,
       coalesce(ro.backbone_rotated, 0) AS backbone_rotated
FROM partnership.districts d LEFT JOIN el ON el.home_district_code = d.code
LEFT JOIN ro ON ro.home_district_code = d.code
WHERE $1::text IS NULL OR d.code = $1::text
"""

# The tail of both completion statements: the studios of the district (all of them when $1 is NULL),
# their sessions in the year and the hours those credited (session hours x attendees), and one answer
# row per district with its completion (`comp`, each statement's own).
STUDIOS_AND_ANSWER = """stu AS (
    SELECT st.district_code, count(DISTINCT st.id) AS studios, count(DISTINCT se.id) AS sessions,
           coalesce(sum(se.hours) FILTER (WHERE a.staff_id IS NOT NULL), 0) AS hours
    FROM training.studios st
    LEFT JOIN training.sessions se ON se.studio_id = st.id AND se.session_date BETWEEN $4::date AND $5::date
    LEFT JOIN training.attendance a ON a.session_id = se.id
    WHERE $1::text IS NULL OR st.district_code = $1::text
    GROUP BY st.district_code)
SELECT d.code AS district_code, coalesce(comp.staff, 0) AS staff, coalesce(comp.completed, 0) AS completed,
       coalesce(stu.studios, 0) AS studios, coalesce(stu.sessions, 0) AS sessions,
       coalesce(stu.hours, 0) AS hours
FROM partnership.districts d LEFT JOIN comp ON comp.district_code = d.code
LEFT JOIN stu ON stu.district_code = d.code
"""

# §4.5 as the fastest plain SQL we know: for each active staff member of the district (rotation's
# own table), the window's hours by an index-only scan of ix_training_hours_staff_window
# `(staff_id, earned_on) INCLUDE (hours)`, the index the platform's query uses too. A lateral sum per
# person touches only the district's ledger rows; a hash aggregate over the whole window reads the
# city's. `{staff_filter}` is filled per call (a district or none), so the planner never sees a
# `$1 IS NULL OR …` it has to keep generic; `check_plans` asserts the index-only scan with EXPLAIN.
TRAINING = """
WITH st AS (
    SELECT id, home_district_code FROM rotation.staff WHERE status = 'active' {staff_filter}),
comp AS (  -- hours with as_of - 5 years < earned_on <= as_of, per person, against the threshold
    SELECT st.home_district_code AS district_code, count(*) AS staff,
           count(*) FILTER (WHERE w.hours >= $6::numeric) AS completed
    FROM st LEFT JOIN LATERAL (
        SELECT sum(t.hours) AS hours FROM training.training_hours t
        WHERE t.staff_id = st.id AND t.earned_on > $2::date AND t.earned_on <= $3::date) w ON true
    GROUP BY st.home_district_code),
""" + STUDIOS_AND_ANSWER + """WHERE $1::text IS NULL OR d.code = $1::text
"""


# §4.5 for every district at once: one pass over the window of the ledger in index order, each
# person's sum as the ordered index-only scan of ix_training_hours_staff_window streams by (a group
# aggregate), joined to the active staff. A probe per person (the one-district form) costs a B-tree
# descent for each of 150,000 people; a hash aggregate over a heap scan spilled to disk at the
# default work_mem. The planner's choice between those flipped with the table's state (a bitmap
# heap scan per person before autovacuum had set the visibility map: 9.2 s against 0.9 s), so
# `figures` runs this statement with hash aggregation off (`ALL_DISTRICTS_SETTINGS`), and
# `check_plans` asserts the ordered index-only scan under a group aggregate with EXPLAIN.
TRAINING_ALL = """
WITH w AS (
    SELECT t.staff_id, sum(t.hours) AS hours FROM training.training_hours t
    WHERE t.earned_on > $2::date AND t.earned_on <= $3::date
    GROUP BY t.staff_id),
comp AS (
    SELECT s.home_district_code AS district_code, count(*) AS staff,
           count(*) FILTER (WHERE w.hours >= $6::numeric) AS completed
    FROM rotation.staff s LEFT JOIN w ON w.staff_id = s.id
    WHERE s.status = 'active'
    GROUP BY s.home_district_code),
""" + STUDIOS_AND_ANSWER

# Every floor statement is planned for the values it runs with (never a generic plan after five
# runs of a prepared statement, which cannot fold `$1 IS NULL`), so what EXPLAIN shows is what runs.
SETTINGS = ("SET LOCAL plan_cache_mode = force_custom_plan",)
ALL_DISTRICTS_SETTINGS = {"enable_hashagg": "off"}


def training_sql(district: str | None) -> str:
    if district is None:
        return TRAINING_ALL
    return TRAINING.format(staff_filter="AND home_district_code = $1::text")


BALANCE = """
WITH work AS (  -- where each active county-level-and-above backbone teacher works on D ($2)
    SELECT coalesce(r.to_school_code, s.home_school_code) AS school_code, s.section
    FROM rotation.staff s
    LEFT JOIN rotation.rotations r
           ON r.staff_id = s.id AND r.status = 'active' AND r.mode = 'full_time'
          AND $2::date BETWEEN r.start_date AND r.end_date
    WHERE s.status = 'active' AND s.role = 'teacher' AND s.backbone_level = ANY($3::text[])
      AND ($1::text IS NULL OR s.home_district_code = $1::text OR r.to_district_code = $1::text)),
b AS (SELECT school_code, section, count(*) AS n FROM work GROUP BY school_code, section),
sec AS (
    SELECT district_code, code, 'primary' AS section, primary_enrollment AS p FROM partnership.schools
    WHERE primary_enrollment > 0 AND ($1::text IS NULL OR district_code = $1::text)
    UNION ALL
    SELECT district_code, code, 'junior', junior_enrollment FROM partnership.schools
    WHERE junior_enrollment > 0 AND ($1::text IS NULL OR district_code = $1::text)),
per AS (
    SELECT sec.district_code, sec.section, sec.p, coalesce(b.n, 0) AS b
    FROM sec LEFT JOIN b ON b.school_code = sec.code AND b.section = sec.section)
SELECT district_code, section, count(*) AS school_count, sum(p) AS enrollment, sum(b) AS backbone,
       count(*) FILTER (WHERE 100 * b < p) AS schools_below_one,
       round(100 * sum(b)::numeric(60, 30) / sum(p), 6) AS mean,
       CASE WHEN sum(b) = 0 THEN NULL
            ELSE round(sqrt(greatest(sum(p) * sum((b * b)::numeric(60, 30) / p)
                                     / (sum(b)::numeric(60, 30) * sum(b)) - 1, 0)), 6) END AS cv
FROM per GROUP BY district_code, section
"""

SECTIONS = ("primary", "junior")


@dataclass(frozen=True)
class Period:
    as_of: date
    period_from: date
    period_to: date

    @property
    def window_after(self) -> date:
        try:
            return self.as_of.replace(year=self.as_of.year - WINDOW_YEARS)
        except ValueError:  # 29 February
            return self.as_of.replace(year=self.as_of.year - WINDOW_YEARS, day=28)


async def figures(conn: asyncpg.Connection, district: str | None, period: Period) -> dict[str, dict[str, Any]]:
    """Every compared figure, per district code: {"partnership": {...}, "rotation": {...}, ...}."""
    async with conn.transaction(readonly=True):
        for setting in SETTINGS:
            await conn.execute(setting)
        return await _figures(conn, district, period)


async def _training_rows(conn: asyncpg.Connection, district: str | None, period: Period, *,
                         explain: bool = False) -> Any:
    """The training statement (or its EXPLAIN), under the all-districts settings when it is that one."""
    args = (district, period.window_after, period.as_of, period.period_from, period.period_to, THRESHOLD)
    sql = ("EXPLAIN (FORMAT JSON) " if explain else "") + training_sql(district)
    if district is not None:
        return await (conn.fetchval if explain else conn.fetch)(sql, *args)
    for name, value in ALL_DISTRICTS_SETTINGS.items():
        await conn.execute(f"SET LOCAL {name} = {value}")
    try:
        return await (conn.fetchval if explain else conn.fetch)(sql, *args)
    finally:  # for this statement only (SET LOCAL would last to the end of the transaction)
        for name in ALL_DISTRICTS_SETTINGS:
            await conn.execute(f"SET LOCAL {name} TO DEFAULT")


async def _figures(conn: asyncpg.Connection, district: str | None, period: Period) -> dict[str, dict[str, Any]]:
    county = list(COUNTY_AND_ABOVE)
    result: dict[str, dict[str, Any]] = {}
    for row in await conn.fetch(PARTNERSHIP, district, period.as_of, period.period_from, period.period_to):
        result.setdefault(row["district_code"], {})["partnership"] = {k: v for k, v in row.items()
                                                                       if k != "district_code"}
    for row in await conn.fetch(ROTATION, district, period.period_from, period.period_to, county):
        result.setdefault(row["district_code"], {})["rotation"] = {k: v for k, v in row.items()
                                                                    if k != "district_code"}
    for row in await _training_rows(conn, district, period):
        result.setdefault(row["district_code"], {})["training"] = {k: v for k, v in row.items()
                                                                    if k != "district_code"}
    empty = {"school_count": 0, "enrollment": 0, "backbone": 0, "schools_below_one": 0, "mean": None, "cv": None}
    for blocks in result.values():
        blocks["balance"] = {section: dict(empty) for section in SECTIONS}
    for row in await conn.fetch(BALANCE, district, period.as_of, county):
        if row["district_code"] in result:
            result[row["district_code"]]["balance"][row["section"]] = {
                k: v for k, v in row.items() if k not in ("district_code", "section")}
    return result


async def check_plans(conn: asyncpg.Connection, district: str, period: Period) -> list[str]:
    """What EXPLAIN says the floor's completion does, as problems (none when it sums each person's
    window by an index-only scan of the covering ledger index: a probe per person for one district,
    one ordered pass under a group aggregate for all), planned as `figures` runs it."""
    problems = []
    async with conn.transaction(readonly=True):
        for setting in SETTINGS:
            await conn.execute(setting)
        for code in (district, None):
            plan = await _training_rows(conn, code, period, explain=True)
            plan = plan if isinstance(plan, list) else json.loads(plan)
            scans = _ledger_scans(plan)
            where = code or "all districts"
            if scans != {("Index Only Scan", "ix_training_hours_staff_window")}:
                problems.append(f"floor completion ({where}) reads the ledger by {sorted(scans)}, "
                                "not an index-only scan of ix_training_hours_staff_window")
            elif code is None and (parents := _ledger_parents(plan)) != {("Aggregate", "Sorted")}:
                problems.append(f"floor completion (all districts) sums the ledger by {sorted(parents)}, "
                                "not a group aggregate over the index order")
    return problems


def _ledger_parents(node: Any, parent: dict | None = None) -> set[tuple[str | None, str | None]]:
    """(node type, strategy) of the plan nodes directly above a read of training.training_hours."""
    found: set[tuple[str | None, str | None]] = set()
    if isinstance(node, list):
        for item in node:
            found |= _ledger_parents(item, parent)
    elif isinstance(node, dict):
        if node.get("Relation Name") == "training_hours" and parent is not None:
            found.add((parent.get("Node Type"), parent.get("Strategy")))
        for value in node.values():
            if isinstance(value, (list, dict)):
                found |= _ledger_parents(value, node if "Node Type" in node else parent)
    return found


def _ledger_scans(node: Any) -> set[tuple[str, str | None]]:
    """(node type, index) of every plan node that reads training.training_hours."""
    found: set[tuple[str, str | None]] = set()
    if isinstance(node, list):
        for item in node:
            found |= _ledger_scans(item)
    elif isinstance(node, dict):
        if node.get("Relation Name") == "training_hours":
            found.add((node.get("Node Type"), node.get("Index Name")))
        for value in node.values():
            if isinstance(value, (list, dict)):
                found |= _ledger_scans(value)
    return found


# Equality with the platform -------------------------------------------------------------------

COMPARED = {
    "partnership": ("township_rural_schools", "covered_schools", "active_pairings", "activities",
                    "teacher_participations", "student_participations"),
    "rotation": ("eligible", "rotated", "backbone_rotated"),
    "training": ("staff", "completed", "studios", "sessions", "hours"),
}
BALANCE_FIELDS = ("school_count", "enrollment", "backbone", "schools_below_one", "mean", "cv")


def _same(platform: Any, floor: Any) -> bool:
    if platform is None or floor is None:
        return platform is None and floor is None
    if isinstance(floor, Decimal):
        # Hours are exact decimal strings; mean and CV are floats of 6-place decimals.
        return Decimal(str(platform)) == floor if isinstance(platform, str) else float(floor) == float(platform)
    return platform == floor


def compare(code: str, overview: dict[str, Any], floor: dict[str, Any]) -> list[str]:
    """Mismatches between one district's platform blocks (district or city overview JSON) and the
    floor's figures, each as 'district block.field: platform X, SQL Y'."""
    mismatches = []
    for block, fields in COMPARED.items():
        mine = overview.get(block)
        if mine is None:
            mismatches.append(f"{code} {block}: missing from the platform's answer (degraded?)")
            continue
        for name in fields:
            if not _same(mine.get(name), floor[block][name]):
                mismatches.append(f"{code} {block}.{name}: platform {mine.get(name)!r}, SQL {floor[block][name]!r}")
    balance = overview.get("balance")
    if balance is None:
        mismatches.append(f"{code} balance: missing from the platform's answer (degraded?)")
        return mismatches
    for section in SECTIONS:
        for name in BALANCE_FIELDS:
            got, want = balance[section].get(name), floor["balance"][section][name]
            if not _same(got, want):
                mismatches.append(f"{code} balance.{section}.{name}: platform {got!r}, SQL {want!r}")
    return mismatches
