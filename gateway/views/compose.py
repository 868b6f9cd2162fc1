"""What the district and city views share: the period, concurrent upstream calls that may fail one
by one, and the blocks built from the services' figures (design.md §4)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any

from gateway.clients import (
    KindTotals as KindTotalsIn,
)
from gateway.clients import (
    PartnershipRow,
    RotationRow,
    SchoolBrief,
    SectionTotals,
    StudioRow,
)
from gateway.views.schemas import (
    ActivityTotals,
    BalanceSummary,
    PartnershipBlock,
    RotationBlock,
    SchoolBalance,
    SectionBalance,
    TrainingBlock,
)
from services.common import cv as balance
from services.common.calendar import academic_year_bounds, academic_year_of, today
from services.common.errors import DomainError, Unprocessable, UpstreamUnavailable
from services.common.settings import SERVICES


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


# Concurrent calls ----------------------------------------------------------------------------

@dataclass
class Settled:
    """Answers of concurrent calls; a call whose service was unavailable is absent and its
    service is named in `failed`."""

    values: dict[str, Any] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)
    failed_calls: dict[str, str] = field(default_factory=dict)

    def ok(self, *names: str) -> bool:
        return all(name in self.values for name in names)

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def degraded(self) -> list[str]:
        return [name for name in SERVICES if name in self.failed]


def _service_of(exc: UpstreamUnavailable) -> str:
    return str(exc.extra.get("upstream", "unknown"))


async def settle(calls: Mapping[str, Awaitable[Any]]) -> Settled:
    """Run every call at once (the answer costs the slowest call, not the sum). An unavailable
    service costs only the parts that need it; any other error (403, 404, …) is raised."""
    names = list(calls)
    results = await asyncio.gather(*calls.values(), return_exceptions=True)
    settled = Settled()
    errors: list[BaseException] = []
    for name, result in zip(names, results):
        if isinstance(result, UpstreamUnavailable):
            service = _service_of(result)
            settled.failed.add(service)
            settled.failed_calls[name] = service
        elif isinstance(result, BaseException):
            errors.append(result)
        else:
            settled.values[name] = result
    if errors:
        raise _most_telling(errors)
    return settled


def _most_telling(errors: list[BaseException]) -> BaseException:
    """The caller's own problem (403, 404, 422) before anything else."""
    domain = sorted((e for e in errors if isinstance(e, DomainError)), key=lambda e: e.status)
    return domain[0] if domain else errors[0]


async def all_of(calls: Mapping[str, Awaitable[Any]]) -> dict[str, Any]:
    """Run every call at once when the view needs all of them: an unavailable service is a 503."""
    names = list(calls)
    results = await asyncio.gather(*calls.values(), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        # Prefer the caller's own problem; otherwise the first unavailable service.
        raise _most_telling(errors)
    return dict(zip(names, results))


# Blocks --------------------------------------------------------------------------------------

def _fraction(value: Decimal) -> Fraction:
    return Fraction(value)


def _meets(rate: Fraction | None, target: Decimal) -> bool | None:
    return None if rate is None else rate >= _fraction(target)


def partnership_block(row: PartnershipRow) -> PartnershipBlock:
    coverage = balance.ratio(row.covered_schools, row.township_rural_schools)
    return PartnershipBlock(
        township_rural_schools=row.township_rural_schools, covered_schools=row.covered_schools,
        coverage_rate=balance.present(coverage, balance.RATE_PLACES), active_pairings=row.active_pairings,
        activities=row.activities, teacher_participations=row.teacher_participations,
        student_participations=row.student_participations,
        by_kind={kind: _kind(totals) for kind, totals in row.by_kind.items()})


def _kind(totals: KindTotalsIn) -> ActivityTotals:
    return ActivityTotals(activities=totals.activities, teacher_participations=totals.teacher_participations,
                      student_participations=totals.student_participations)


def rotation_block(row: RotationRow) -> RotationBlock:
    rate = balance.ratio(row.rotated, row.eligible)
    share = balance.ratio(row.backbone_rotated, row.rotated)
    target_rate, target_share = row.target_rate, row.target_backbone_share  # rotation's, defaults included
    return RotationBlock(
        eligible=row.eligible, rotated=row.rotated,
        rotation_rate=balance.present(rate, balance.RATE_PLACES),
        backbone_rotated=row.backbone_rotated,
        backbone_share=balance.present(share, balance.RATE_PLACES),
        target_rate=float(target_rate), target_backbone_share=float(target_share),
        meets_target_rate=_meets(rate, target_rate), meets_target_backbone_share=_meets(share, target_share))


def training_block(studios: StudioRow, completion: tuple[int, int] | None) -> TrainingBlock:
    """`completion` is (active staff, of whom completed), None when it could not be had."""
    staff, completed = completion if completion is not None else (None, None)
    rate = balance.ratio(completed, staff) if staff is not None and completed is not None else None
    return TrainingBlock(staff=staff, completed=completed,
                         completion_rate=balance.present(rate, balance.RATE_PLACES),
                         studios=studios.studios, sessions=studios.sessions, hours=studios.hours)


def section_balance(figures: balance.SectionFigures, section: str) -> SectionBalance:
    return SectionBalance(
        school_count=figures.school_count, enrollment=figures.enrollment, backbone=figures.backbone,
        mean=balance.present(figures.mean, balance.FIGURE_PLACES),
        cv=balance.present(figures.cv, balance.FIGURE_PLACES),
        target_cv=float(balance.CV_BARS[section]), meets_target_cv=figures.meets_cv_bar(section),
        schools_below_one=figures.schools_below_one,
        schools=[SchoolBalance(code=f.code, name=f.name, enrollment=f.enrollment, backbone=f.backbone,
                               per_100=balance.present(f.per_100, balance.FIGURE_PLACES))
                 for f in figures.schools])


def district_sections(schools: Iterable[SchoolBrief], placement: Mapping[tuple[str, str], int]
                      ) -> dict[str, SectionBalance]:
    figures = balance.district_sections((s.model_dump() for s in schools), placement)
    return {section: section_balance(figures[section], section) for section in balance.SECTIONS}


def balance_summary_from_totals(sections: Mapping[str, SectionTotals]) -> BalanceSummary:
    """The balance block from rotation's per-section sums (a section it does not list: no schools)."""
    figures = {}
    for section in balance.SECTIONS:
        totals = sections.get(section)
        figures[section] = balance.section_from_totals(
            school_count=totals.school_count, enrollment=totals.enrollment, backbone=totals.backbone,
            schools_below_one=totals.schools_below_one,
            backbone_squared_per_enrollment=totals.backbone_squared_per_enrollment,
        ) if totals is not None else balance.section_figures(())
    return BalanceSummary(**{section: section_balance(figures[section], section).model_dump(exclude={"schools"})
                             for section in balance.SECTIONS})


def balance_summary(schools: Iterable[SchoolBrief], placement: Mapping[tuple[str, str], int]) -> BalanceSummary:
    sections = district_sections(schools, placement)
    return BalanceSummary(**{section: sections[section].model_dump(exclude={"schools"})
                             for section in balance.SECTIONS})
