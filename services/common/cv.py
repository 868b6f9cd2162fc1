"""Backbone balance (校际差异系数, design.md §4.6): the CV arithmetic — pure, exact, no I/O.

For a section s of a district on a date: every school i with enrollment P_i > 0 in s has
X_i = 100·B_i/P_i county-level-and-above backbone teachers per 100 students; with P = ΣP_i the
enrollment-weighted mean is X̄ = ΣP_i·X_i/P, the weighted standard deviation
S = √(ΣP_i·(X_i − X̄)²/P) and the difference coefficient CV = S/X̄ (null when X̄ = 0).

Everything up to the square root is a `Fraction`, so no rounding happens before the arithmetic;
the square root is taken once, of the exact CV², with 50 significant digits, and figures are
rounded only when they are presented (`present`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

SECTIONS = ("primary", "junior")
# 2017 national bars for high-quality balanced compulsory education (design.md §4.6).
CV_BARS: dict[str, Fraction] = {"primary": Fraction(1, 2), "junior": Fraction(45, 100)}
PER_100_BAR = Fraction(1)

# Presentation precision (documented in the OpenAPI description of the views).
FIGURE_PLACES = 6  # mean, cv, per_100
RATE_PLACES = 4  # coverage, rotation, backbone share, completion rates


@dataclass(frozen=True)
class SchoolInput:
    code: str
    name: str
    enrollment: int
    backbone: int


@dataclass(frozen=True)
class SchoolFigure:
    code: str
    name: str
    enrollment: int
    backbone: int
    per_100: Fraction


@dataclass(frozen=True)
class SectionFigures:
    school_count: int
    enrollment: int
    backbone: int
    mean: Fraction | None
    cv: Decimal | None
    cv_squared: Fraction | None
    schools_below_one: int
    schools: tuple[SchoolFigure, ...]

    def meets_cv_bar(self, section: str) -> bool | None:
        """CV ≤ the national bar, decided exactly on CV² (None when the CV is undefined)."""
        if self.cv_squared is None:
            return None
        return self.cv_squared <= CV_BARS[section] ** 2


def _sqrt(value: Fraction) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 50
        return (Decimal(value.numerator) / Decimal(value.denominator)).sqrt()


def section_figures(schools: Iterable[SchoolInput]) -> SectionFigures:
    """Figures of one section. Schools with no enrollment in the section are left out entirely
    (their backbone teachers, if any, are not in the section's figures either)."""
    counted = [s for s in schools if s.enrollment > 0]
    figures = tuple(SchoolFigure(s.code, s.name, s.enrollment, s.backbone, Fraction(100 * s.backbone, s.enrollment))
                    for s in counted)
    total = sum(s.enrollment for s in counted)
    backbone = sum(s.backbone for s in counted)
    below = sum(1 for f in figures if f.per_100 < PER_100_BAR)
    if total == 0:
        return SectionFigures(0, 0, 0, None, None, None, 0, figures)
    mean = sum((f.enrollment * f.per_100 for f in figures), Fraction(0)) / total
    cv: Decimal | None = None
    cv_squared: Fraction | None = None
    if mean != 0:
        variance = sum((f.enrollment * (f.per_100 - mean) ** 2 for f in figures), Fraction(0)) / total
        cv_squared = variance / (mean * mean)
        cv = _sqrt(cv_squared)  # S/X̄ = √(S²/X̄²), exact up to this one root
    return SectionFigures(len(figures), total, backbone, mean, cv, cv_squared, below, figures)


def section_from_totals(*, school_count: int, enrollment: int, backbone: int, schools_below_one: int,
                        backbone_squared_per_enrollment: Fraction) -> SectionFigures:
    """The same figures as `section_figures` (without the school list) from sums over the schools:
    X̄ = 100·B/P and, expanding S², CV² = P·Σ(B_i²/P_i)/B² − 1, exact as long as Σ(B_i²/P_i) is."""
    if enrollment == 0:
        return SectionFigures(0, 0, 0, None, None, None, 0, ())
    mean = Fraction(100 * backbone, enrollment)
    cv: Decimal | None = None
    cv_squared: Fraction | None = None
    if backbone != 0:
        cv_squared = max(enrollment * backbone_squared_per_enrollment / (backbone * backbone) - 1, Fraction(0))
        cv = _sqrt(cv_squared)
    return SectionFigures(school_count, enrollment, backbone, mean, cv, cv_squared, schools_below_one, ())


def district_sections(schools: Iterable[Mapping], placement: Mapping[tuple[str, str], int]
                      ) -> dict[str, SectionFigures]:
    """Both sections from school briefs (`code`, `name`, `primary_enrollment`,
    `junior_enrollment`) and the backbone placement {(school_code, section): count}."""
    schools = list(schools)
    return {
        section: section_figures(
            SchoolInput(s["code"], s["name"], int(s[f"{section}_enrollment"]),
                        int(placement.get((s["code"], section), 0)))
            for s in schools)
        for section in SECTIONS
    }


def ratio(numerator: int, denominator: int) -> Fraction | None:
    """A rate as an exact fraction; None when the denominator is 0 (api.md: rates are null then)."""
    return None if denominator == 0 else Fraction(numerator, denominator)


def present(value: Fraction | Decimal | None, places: int) -> float | None:
    """Round half up to `places` decimals, once, at presentation."""
    if value is None:
        return None
    with localcontext() as ctx:
        ctx.prec = 60
        exact = Decimal(value.numerator) / Decimal(value.denominator) if isinstance(value, Fraction) else value
        return float(exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))
