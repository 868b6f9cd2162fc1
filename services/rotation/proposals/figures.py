"""The figures of a proposal, before and after its moves, exactly as the district views compute
them: the §4.6 arithmetic is the platform's one implementation (imported, not copied), and the
rates are §4.3/§4.4 with the proposed moves counted as rotated."""

from __future__ import annotations

from fractions import Fraction

# The CV arithmetic lives in one kernel module (services/common/cv.py).
from services.common import cv as arithmetic
from services.rotation.proposals.model import SECTIONS, Move, Problem, placement_after
from services.rotation.proposals.optimiser import Outcome
from services.rotation.proposals.schemas import (
    Bar,
    Figures,
    MoveRead,
    Optimiser,
    ProposalResult,
    SchoolFigure,
    SectionFigures,
)


def sections(problem: Problem, placement: dict[tuple[str, str], int]) -> dict[str, arithmetic.SectionFigures]:
    briefs = [{"code": s.code, "name": s.name, **{f"{sec}_enrollment": s.enrollment.get(sec, 0) for sec in SECTIONS}}
              for s in problem.schools]
    return arithmetic.district_sections(briefs, placement)


def cv_squared_sum(problem: Problem, moves: list[Move]) -> Fraction:
    """Σ CV² over the sections with a CV, after the moves: what the optimiser minimises."""
    figures = sections(problem, placement_after(problem, moves))
    return sum((f.cv_squared for f in figures.values() if f.cv_squared is not None), Fraction(0))


def _section(figures: arithmetic.SectionFigures, section: str) -> SectionFigures:
    return SectionFigures(school_count=figures.school_count, enrollment=figures.enrollment, backbone=figures.backbone,
                          mean=arithmetic.present(figures.mean, arithmetic.FIGURE_PLACES),
                          cv=arithmetic.present(figures.cv, arithmetic.FIGURE_PLACES),
                          target_cv=float(arithmetic.CV_BARS[section]),
                          meets_target_cv=figures.meets_cv_bar(section),
                          schools_below_one=figures.schools_below_one)


def _figures(problem: Problem, placement: dict, moves: int, county: int) -> tuple[Figures, dict]:
    by_section = sections(problem, placement)
    rotated, backbone = problem.rotated + moves, problem.backbone_rotated + county
    rate = arithmetic.ratio(rotated, problem.eligible)
    return Figures(eligible=problem.eligible, rotated=rotated,
                   rotation_rate=arithmetic.present(rate, arithmetic.RATE_PLACES),
                   backbone_rotated=backbone,
                   backbone_share=arithmetic.present(arithmetic.ratio(backbone, rotated), arithmetic.RATE_PLACES),
                   **{s: _section(by_section[s], s) for s in SECTIONS}), by_section


def _per_100(by_section: dict, school: str, section: str) -> float | None:
    if section not in by_section:
        return None
    for figure in by_section[section].schools:
        if figure.code == school:
            return arithmetic.present(figure.per_100, arithmetic.FIGURE_PLACES)
    return None


def result(problem: Problem, outcome: Outcome, *, time_limit: float, fallback: str | None = None) -> ProposalResult:
    moves = sorted(outcome.moves, key=lambda m: problem.by_id[m.staff_id].rank)
    county = sum(1 for m in moves if problem.by_id[m.staff_id].county)
    before, before_sections = _figures(problem, problem.placement, 0, 0)
    after, after_sections = _figures(problem, placement_after(problem, moves), len(moves), county)
    reads = []
    for move in moves:
        c = problem.by_id[move.staff_id]
        changes = problem.balance_section(c) is not None
        same = bool(c.subject) and c.subject in problem.subjects.get((move.to_school, c.section), ())
        if changes:
            why = (f"county-level backbone teacher of {c.section}: {move.from_school} has "
                   f"{_per_100(before_sections, move.from_school, c.section)} per 100 students, "
                   f"{move.to_school} {_per_100(before_sections, move.to_school, c.section)}; "
                   "the move lowers the district's CV")
        elif c.county:
            why = "county-level-and-above backbone: counts toward the rotation rate and the backbone share"
        else:
            why = "counts toward the rotation rate"
        reads.append(MoveRead(
            staff_id=c.id, staff_no=c.staff_no, name=c.name, role=c.role, section=c.section, subject=c.subject,
            backbone_level=c.backbone_level, from_school_code=move.from_school, to_school_code=move.to_school,
            changes_balance=changes, same_subject=same, why=why,
            from_school=SchoolFigure(code=move.from_school,
                                     per_100_before=_per_100(before_sections, move.from_school, c.section),
                                     per_100_after=_per_100(after_sections, move.from_school, c.section)),
            to_school=SchoolFigure(code=move.to_school,
                                   per_100_before=_per_100(before_sections, move.to_school, c.section),
                                   per_100_after=_per_100(after_sections, move.to_school, c.section))))
    return ProposalResult(
        optimiser=Optimiser(method=outcome.method, status=outcome.status, gap=outcome.gap,
                            seconds=round(outcome.seconds, 3), time_limit_seconds=time_limit,
                            exact_weights=outcome.exact_weights, fallback_reason=fallback),
        rotation_rate=Bar(target=float(problem.target_rate), met=problem.rate_met(len(moves)),
                          why=outcome.unmet.get("rotation_rate")),
        backbone_share=Bar(target=float(problem.target_share), met=problem.share_met(len(moves), county),
                           why=outcome.unmet.get("backbone_share")),
        before=before, after=after, candidates=len(problem.movable()), moves=reads)
