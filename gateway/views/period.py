"""The period a view reports on: the `as_of` day and the academic year (design.md §4), with the
defaults every composed view applies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from services.common.calendar import academic_year_bounds, academic_year_of, today
from services.common.errors import Unprocessable


@dataclass(frozen=True)
class Period:
    as_of: date
    academic_year: int
    period_from: date
    period_to: date


def resolve_period(as_of: date | None, academic_year: int | None) -> Period:
    """as_of defaults to today; the academic year to the one containing as_of."""
    day = as_of or today()
    year = academic_year if academic_year is not None else academic_year_of(day)
    if not 1900 <= year <= 2998:
        raise Unprocessable("academic_year must be between 1900 and 2998", slug="validation",
                            extra={"errors": [{"field": "query.academic_year", "message": "out of range",
                                               "type": "value_error"}]})
    first, last = academic_year_bounds(year)
    return Period(day, year, first, last)
