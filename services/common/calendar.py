"""The academic calendar and local time: the one definition every service and the gateway use.

Academic year Y runs 1 September Y to 31 August Y+1, both days included (design.md §3); the
districts keep China Standard Time, which has had no daylight saving since 1991, so a fixed offset
needs no tz database in Python. SQL that dates by the local day names the zone (`CHINA_ZONE`).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

# The zone by name, for PostgreSQL (`AT TIME ZONE`); training's generated session_date uses it.
CHINA_ZONE = "Asia/Shanghai"
# The same zone as a fixed offset, for Python.
CHINA = timezone(timedelta(hours=8), "CST")


def today() -> date:
    """Today where the districts are: the default `as_of` everywhere."""
    return datetime.now(CHINA).date()


def academic_year_of(day: date) -> int:
    """The academic year that contains `day` (September starts a new one)."""
    return day.year if day.month >= 9 else day.year - 1


def academic_year_start(year: int) -> date:
    """1 Sept Y: the day eligibility for academic year Y is taken on (design.md §4.3)."""
    return date(year, 9, 1)


def academic_year_bounds(year: int) -> tuple[date, date]:
    """1 Sept Y – 31 Aug Y+1, inclusive."""
    return date(year, 9, 1), date(year + 1, 8, 31)
