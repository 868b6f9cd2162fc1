"""The backbone-balance arithmetic of design.md §4.6 against hand-worked cases (no I/O)."""

from decimal import Decimal
from fractions import Fraction

from services.common.cv import (
    SchoolInput,
    district_sections,
    present,
    ratio,
    section_figures,
)


def school(code: str, enrollment: int, backbone: int) -> SchoolInput:
    return SchoolInput(code, f"测试学校{code}", enrollment, backbone)


class TestSectionFigures:
    def test_equal_schools_have_cv_zero(self):
        # X = 100·2/200 = 1 and 100·3/300 = 1: every school at the mean, S = 0, CV = 0.
        figures = section_figures([school("A", 200, 2), school("B", 300, 3)])
        assert figures.school_count == 2
        assert figures.mean == Fraction(1)
        assert figures.cv == 0
        assert figures.schools_below_one == 0
        assert present(figures.cv, 6) == 0.0

    def test_one_school(self):
        # X = 100·3/400 = 0.75 = X̄; S = 0; below the bar of 1 per 100 students.
        figures = section_figures([school("A", 400, 3)])
        assert figures.school_count == 1
        assert figures.enrollment == 400
        assert figures.backbone == 3
        assert figures.mean == Fraction(3, 4)
        assert figures.cv == 0
        assert figures.schools_below_one == 1
        assert [f.per_100 for f in figures.schools] == [Fraction(3, 4)]

    def test_mean_zero_gives_null_cv(self):
        figures = section_figures([school("A", 500, 0), school("B", 120, 0)])
        assert figures.school_count == 2
        assert figures.mean == 0
        assert figures.cv is None
        assert figures.cv_squared is None
        assert figures.meets_cv_bar("primary") is None
        assert figures.schools_below_one == 2

    def test_no_schools_with_enrollment(self):
        # A school with no students in the section is not in its figures, backbone or not.
        figures = section_figures([school("A", 0, 5)])
        assert (figures.school_count, figures.enrollment, figures.backbone) == (0, 0, 0)
        assert figures.mean is None and figures.cv is None
        assert figures.schools == ()

    def test_weighted_differs_from_unweighted(self):
        # A: P=100, B=4 → X_A = 4;  B: P=300, B=0 → X_B = 0.
        # Weighted (§4.6): P = 400, X̄ = (100·4 + 300·0)/400 = 1 (= 100·4/400),
        #   S² = (100·(4−1)² + 300·(0−1)²)/400 = (900 + 300)/400 = 3, S = √3, CV = √3/1 = 1.7320508…
        # Unweighted it would be mean 2, S = √((4+4)/2) = 2, CV = 1 — not the standard's figure.
        figures = section_figures([school("A", 100, 4), school("B", 300, 0)])
        assert figures.mean == Fraction(1)
        assert figures.cv_squared == Fraction(3)
        assert present(figures.cv, 6) == 1.732051
        assert figures.cv.quantize(Decimal("1e-20")) == Decimal("1.73205080756887729353")
        assert figures.schools_below_one == 1

    def test_exact_bar_is_decided_exactly(self):
        # A: P=100, B=3 → X=3;  B: P=900, B=9 → X=1.  X̄ = (300+900)/1000 = 1.2,
        # S² = (100·1.8² + 900·0.2²)/1000 = (324 + 36)/1000 = 0.36, S = 0.6, CV = 0.5 exactly:
        # at the primary bar (≤ 0.50 meets it), above the junior bar (0.45).
        figures = section_figures([school("A", 100, 3), school("B", 900, 9)])
        assert figures.mean == Fraction(6, 5)
        assert figures.cv == Decimal("0.5")
        assert figures.meets_cv_bar("primary") is True
        assert figures.meets_cv_bar("junior") is False
        assert present(figures.mean, 6) == 1.2


def test_district_sections_split_by_enrollment():
    schools = [
        {"code": "S1", "name": "九年一贯制学校", "primary_enrollment": 600, "junior_enrollment": 300},
        {"code": "S2", "name": "初级中学", "primary_enrollment": 0, "junior_enrollment": 500},
    ]
    placement = {("S1", "primary"): 6, ("S1", "junior"): 2, ("S2", "junior"): 3, ("S2", "primary"): 1}
    sections = district_sections(schools, placement)
    # primary: only S1 (S2 has no primary pupils, its primary backbone teacher is left out): X = 1.
    assert sections["primary"].school_count == 1
    assert sections["primary"].backbone == 6
    assert sections["primary"].cv == 0
    # junior: X_1 = 200/300 = 2/3, X_2 = 300/500 = 3/5; X̄ = 100·5/800 = 5/8;
    # S² = (300·(2/3−5/8)² + 500·(3/5−5/8)²)/800 = (300/576 + 500/1600)/800 = (25/48 + 15/48)/800
    #    = 1/960;  CV² = (1/960)/(25/64) = 1/375, CV = 0.0516397…
    junior = sections["junior"]
    assert junior.mean == Fraction(5, 8)
    assert junior.cv_squared == Fraction(1, 375)
    assert present(junior.cv, 6) == 0.05164
    assert junior.schools_below_one == 2


def test_rates_and_presentation():
    assert ratio(1, 0) is None
    assert present(ratio(1, 3), 4) == 0.3333
    assert present(ratio(2, 3), 4) == 0.6667
    assert present(Fraction(1, 8), 2) == 0.13  # half up, not half to even
    assert present(None, 4) is None


def test_the_worked_example_of_docs_design_md():
    # docs/design.md §4.6: P = 1000, 500, 500; B = 10, 2, 8 → X = 1.0, 0.4, 1.6; X̄ = 1.0;
    # S² = (0 + 500·0.36 + 500·0.36) / 2000 = 0.18; CV = √0.18 = 0.424264…; one school below 1.
    figures = section_figures([school("A", 1000, 10), school("B", 500, 2), school("C", 500, 8)])
    assert [f.per_100 for f in figures.schools] == [Fraction(1), Fraction(2, 5), Fraction(8, 5)]
    assert figures.mean == Fraction(1)
    assert figures.cv_squared == Fraction(18, 100)
    assert present(figures.cv, 6) == 0.424264
    assert figures.schools_below_one == 1
    assert figures.meets_cv_bar("primary") is True
    assert figures.meets_cv_bar("junior") is True
