"""The blocks of the district and city views, built from the services' figures (design.md §4):
rates as exact fractions, the CV from the kernel (services/common/cv.py), rounded once here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from fractions import Fraction

from gateway.clients import (
    CompletionRow,
    PartnershipRow,
    RotationRow,
    SchoolBrief,
    SectionTotals,
    StudioRow,
)
from gateway.clients import (
    KindTotals as KindTotalsIn,
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


def training_block(studios: StudioRow, completion: CompletionRow) -> TrainingBlock:
    """Studio figures and §4.5 completion (active staff, of whom completed) of one district."""
    rate = balance.ratio(completion.completed, completion.staff)
    return TrainingBlock(staff=completion.staff, completed=completion.completed,
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
