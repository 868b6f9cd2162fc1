"""The eligibility rule of design.md §4.3 as one SQL expression, shared by the staff list and the
district figures so both always agree.

A staff member is eligible on date E when they are active and
``in_post_since + min_years ≤ E`` (``min_years_teacher`` for teachers, ``min_years_cadre`` for
cadres), unless ``retirement_date`` is set and ``retirement_date ≤ E + retirement_exempt_years``.

Years are calendar years added by PostgreSQL (``make_interval(years => n)``), never 365-day
blocks. PostgreSQL clamps a day that does not exist to the end of the month: someone in post
since 29 Feb 2020 reaches six years on **28 Feb 2026** (eligible on 28 Feb, not only from
1 Mar). We keep PostgreSQL's semantics on purpose: the rule is evaluated in SQL for whole districts
and one definition must hold everywhere.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Date, Integer, and_, case, cast, func, literal, literal_column, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Interval

from services.rotation.schemas import DEFAULT_POLICY, StaffRole


class years_interval(FunctionElement):
    """``make_interval(years => n)``: n calendar years."""

    type = Interval()
    inherit_cache = True
    name = "make_interval"


@compiles(years_interval)
def _compile_years(element: years_interval, compiler: Any, **kw: Any) -> str:
    return f"make_interval(years => {compiler.process(element.clauses, **kw)})"


def _default(value: int) -> Any:
    return literal_column(str(int(value)), Integer)


def eligible_on(staff: Any, policy: Any, as_of: date) -> Any:
    """The §4.3 predicate over a staff row and its district's policy row.

    `policy` is LEFT JOINed on ``policy.district_code = staff.home_district_code``; a district
    without a policy row gets the defaults of api.md (6, 6, 5).
    """
    e = literal(as_of, Date)
    min_years = case(
        (staff.role == StaffRole.teacher.value,
         func.coalesce(policy.min_years_teacher, _default(DEFAULT_POLICY.min_years_teacher))),
        else_=func.coalesce(policy.min_years_cadre, _default(DEFAULT_POLICY.min_years_cadre)),
    )
    exempt_years = func.coalesce(policy.retirement_exempt_years, _default(DEFAULT_POLICY.retirement_exempt_years))
    # Both sums are whole years added to a date, so the cast back to date loses nothing.
    served_until = cast(staff.in_post_since + years_interval(min_years), Date)
    exempt_from = cast(e + years_interval(exempt_years), Date)
    return and_(
        staff.status == "active",
        served_until <= e,
        or_(staff.retirement_date.is_(None), staff.retirement_date > exempt_from),
    )
