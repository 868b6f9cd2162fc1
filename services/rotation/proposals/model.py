"""The proposer's problem as plain data, and the rules that decide who may move where.

A *candidate* is a staff member of the district eligible on 1 Sept of the year (design.md §4.3),
not excluded, with no rotation that is not withdrawn overlapping the proposal's dates or counted
in the year already, so nobody moves twice. A move never leaves the district: destinations are
the district's own schools (minus excluded ones). With `keep_section` a mover goes only to schools
that enrol their section.

Only a county-level-and-above backbone *teacher* of `primary` or `junior` on a `full_time` move
changes the balance (§4.6 "works at"); such a teacher goes only where their section is enrolled
exactly when their home school enrols it, so the section's total of backbone teachers, and with it
the weighted mean, never changes: minimising Σ CV² is then minimising Σ c_i·b_i² (see `weights`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction

SECTIONS = ("primary", "junior")  # the sections of the balance (design.md §4.6)
COUNTY = frozenset({"district", "municipal", "special_grade"})  # 县级以上骨干, design.md §3


@dataclass(frozen=True)
class School:
    code: str
    name: str
    enrollment: dict[str, int]  # section → students

    def enrols(self, section: str) -> bool:
        return self.enrollment.get(section, 0) > 0


@dataclass(frozen=True)
class Candidate:
    id: str
    staff_no: str
    name: str
    school: str  # home school, where they work now
    section: str
    role: str
    backbone_level: str
    subject: str | None = None

    @property
    def teacher(self) -> bool:
        return self.role == "teacher"

    @property
    def county(self) -> bool:
        return self.backbone_level in COUNTY

    @property
    def backbone(self) -> bool:
        return self.backbone_level != "none"

    @property
    def rank(self) -> tuple[int, int, str]:
        """Tie-break order: 先教师后干部 (teachers first), then 先骨干后普通 (backbone first,
        county-level before school-level), then staff number for a stable answer."""
        level = 0 if self.county else 1 if self.backbone else 2
        return (0 if self.teacher else 1, level, self.staff_no)


@dataclass(frozen=True)
class Move:
    staff_id: str
    from_school: str
    to_school: str


@dataclass
class Problem:
    district_code: str
    academic_year: int
    mode: str
    schools: list[School]
    placement: dict[tuple[str, str], int]  # (school, section) → backbone teachers working there
    eligible: int
    rotated: int  # already counted in the year (§4.3)
    backbone_rotated: int
    target_rate: Fraction
    target_share: Fraction
    candidates: list[Candidate]
    keep_section: bool = True
    prefer_same_subject: bool = False
    included: frozenset[str] = frozenset()
    excluded_schools: frozenset[str] = frozenset()
    max_incoming: int | None = None
    max_moves: int | None = None
    subjects: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)  # (school, section) → subjects

    def __post_init__(self) -> None:
        self.by_code = {s.code: s for s in self.schools}
        self.by_id = {c.id: c for c in self.candidates}

    # Who changes the balance, and where each may go ---------------------------------------

    def balance_section(self, c: Candidate) -> str | None:
        """The section whose balance a move of `c` changes, or None."""
        if (self.mode == "full_time" and c.teacher and c.county and c.section in SECTIONS
                and self.by_code[c.school].enrols(c.section)):
            return c.section
        return None

    def destination_filter(self, c: Candidate) -> tuple[str, ...]:
        """The schools `c` may be sent to, their own included (a flow never sends anyone home:
        see `flows`): district schools not excluded; with `keep_section`, those enrolling the
        section; a county-level teacher on a full-time move counts at a school exactly when it
        enrols their section, so they go only to schools that count them as home does."""
        allowed = [s for s in self.schools if s.code not in self.excluded_schools]
        counted = (self.mode == "full_time" and c.teacher and c.county and c.section in SECTIONS)
        home_enrols = self.by_code[c.school].enrols(c.section)
        if counted:
            allowed = [s for s in allowed if s.enrols(c.section) == home_enrols]
        if self.keep_section:
            allowed = [s for s in allowed if s.enrols(c.section)]
        return tuple(s.code for s in allowed)

    def movable(self) -> list[Candidate]:
        """Candidates with somewhere to go."""
        return [c for c in self.candidates if any(d != c.school for d in self.destination_filter(c))]

    def needed_moves(self) -> int:
        """Moves the rate bar asks for beyond those already counted: ⌈t·E⌉ − rotated."""
        need = -((-self.target_rate.numerator * self.eligible) // self.target_rate.denominator)
        return max(0, need - self.rotated)

    def share_met(self, moves: int, county_moves: int) -> bool | None:
        """None when nobody rotates: the share is undefined (null), and no move is owed to it."""
        total = self.rotated + moves
        if total == 0:
            return None
        return Fraction(self.backbone_rotated + county_moves, total) >= self.target_share

    def rate_met(self, moves: int) -> bool:
        if self.eligible == 0:
            return True
        return Fraction(self.rotated + moves, self.eligible) >= self.target_rate

    def section_totals(self) -> dict[str, tuple[int, int]]:
        """(students, backbone teachers) of each section over the schools that enrol it."""
        out = {}
        for section in SECTIONS:
            enrolled = [s for s in self.schools if s.enrols(section)]
            out[section] = (sum(s.enrollment[section] for s in enrolled),
                            sum(self.placement.get((s.code, section), 0) for s in enrolled))
        return out

    def weights(self) -> dict[tuple[str, str], Fraction]:
        """c_{s,i} with Σ_s CV_s² = Σ c_{s,i}·b_{s,i}² − (number of sections counted).

        From design.md §4.6: X_i = 100·b_i/P_i, X̄ = 100·B/P, S² = ΣP_i·X_i²/P − X̄², so
        CV² = S²/X̄² = P·Σ(b_i²/P_i)/B² − 1, and c_{s,i} = P_s/(B_s²·P_{s,i}). A section without
        backbone teachers has no CV (null) and no weight."""
        weights = {}
        for section, (students, backbone) in self.section_totals().items():
            if backbone == 0:
                continue
            for s in self.schools:
                if s.enrols(section):
                    weights[(s.code, section)] = Fraction(students, backbone * backbone * s.enrollment[section])
        return weights

    def objective(self, moves: Iterable[Move]) -> Fraction:
        """Σ c·b² after `moves`: the exact quantity both solvers minimise."""
        after = placement_after(self, moves)
        return sum((w * after.get(key, 0) ** 2 for key, w in self.weights().items()), Fraction(0))


def placement_after(problem: Problem, moves: Iterable[Move]) -> dict[tuple[str, str], int]:
    """The backbone placement once the moves take effect (only balance-changing movers count)."""
    after = dict(problem.placement)
    for move in moves:
        c = problem.by_id[move.staff_id]
        section = problem.balance_section(c)
        if section is None:
            continue
        after[(move.from_school, section)] = after.get((move.from_school, section), 0) - 1
        after[(move.to_school, section)] = after.get((move.to_school, section), 0) + 1
    return after
