"""CP-SAT over counts of movers (issue 14 item 2), lexicographic in two solves.

Movers are interchangeable within a *group* (the balance section they change, if any, and the
schools they may go to) and a *class* (teacher or cadre × county-level, school-level or no
backbone), so the model counts them per school instead of choosing people: o[g,i,k] leave school
i, in[g,j] arrive at j. A district of 9,000 staff and 100 schools is then a few thousand integers.

1. Meet both rate bars (as hard constraints, dropped one at a time only when infeasible), then
   minimise Σ c_{s,i}·b_{s,i}² = Σ_s CV_s² + const (model.Problem.weights), whose terms are
   integer-scaled (exactly, by the common denominator, whenever it fits in 53 bits).
2. Keep that objective at its value and minimise the number of moves, then the tie-break penalty:
   cadres after teachers (先教师后干部), others after backbone (先骨干后普通).

Each solve has a time limit; the first solve's gap (objective − bound) / objective is reported.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from fractions import Fraction

from ortools.sat.python import cp_model

from services.rotation.proposals.flows import name_moves, pair_schools
from services.rotation.proposals.model import Candidate, Move, Problem, placement_after

LEVELS = ("county", "school", "none")
EXACT_LIMIT = 2**53
SCALE = 10**9  # the largest weight when weights have to be rounded


@dataclass
class Outcome:
    moves: list[Move]
    method: str  # "cp-sat" or "greedy"
    status: str  # "optimal", "feasible"
    gap: float | None = None
    seconds: float = 0.0
    unmet: dict[str, str] = field(default_factory=dict)  # bar → why it cannot be met
    exact_weights: bool = True


class NoSolution(Exception):
    """The solver found nothing in its time (the greedy takes over)."""


class Infeasible(Exception):
    """Even without the rate bars the constraints cannot hold (included staff vs. limits)."""


def _class(c: Candidate) -> tuple[bool, str]:
    return (c.teacher, "county" if c.county else "school" if c.backbone else "none")


def _penalty(cls: tuple[bool, str], n: int) -> int:
    return (0 if cls[0] else 3 * n + 3) + LEVELS.index(cls[1])


def integer_weights(weights: dict[tuple[str, str], Fraction], bound: int) -> tuple[dict, bool]:
    """Integer coefficients proportional to the weights: exact when the common denominator keeps
    the objective under 2^53, else rounded to 9 significant digits of the largest."""
    if not weights:
        return {}, True
    common = 1
    for w in weights.values():
        common = common * w.denominator // math.gcd(common, w.denominator)
        if common > EXACT_LIMIT:
            break
    exact = {k: int(w * common) for k, w in weights.items()} if common <= EXACT_LIMIT else None
    if exact is not None and sum(exact.values()) * bound * bound < EXACT_LIMIT:
        return exact, True
    top = max(weights.values())
    return {k: max(1, round(w / top * SCALE)) for k, w in weights.items()}, False


class _Model:
    def __init__(self, problem: Problem, *, rate: bool, share: bool) -> None:
        self.problem = problem
        m = self.m = cp_model.CpModel()
        movable = problem.movable()
        n = max(1, len(movable))
        self.n = n
        # Groups of interchangeable movers, and their members by (school, class).
        self.groups: dict[tuple, dict[tuple[str, tuple], list[Candidate]]] = {}
        for c in movable:
            key = (problem.balance_section(c), problem.destination_filter(c))
            self.groups.setdefault(key, {}).setdefault((c.school, _class(c)), []).append(c)
        self.out: dict[tuple, cp_model.IntVar] = {}
        self.into: dict[tuple, cp_model.IntVar] = {}
        totals, county, penalty, arriving = [], [], [], {}
        cap = problem.max_incoming
        for g, (section, targets) in enumerate(self.groups):
            members = self.groups[(section, targets)]
            total = m.NewIntVar(0, n, f"total{g}")
            outs, schools = [], set(targets)
            for (school, cls), people in members.items():
                forced = sum(1 for c in people if c.id in problem.included)
                var = m.NewIntVar(forced, len(people), f"o{g}_{school}_{cls}")
                self.out[(section, targets, school, cls)] = var
                outs.append(var)
                schools.add(school)
                if cls[1] == "county":
                    county.append(var)
                penalty.append(_penalty(cls, n) * var)
            ins = []
            for school in targets:
                var = m.NewIntVar(0, n if cap is None else cap, f"i{g}_{school}")
                self.into[(section, targets, school)] = var
                ins.append(var)
                arriving.setdefault(school, []).append(var)
            m.Add(total == sum(outs))
            m.Add(total == sum(ins))
            for school in schools:  # pairable without sending anyone home (flows.pair_schools)
                leaving = [v for (s, t, sc, _), v in self.out.items() if (s, t) == (section, targets) and sc == school]
                here = [self.into[(section, targets, school)]] if school in targets else []
                m.Add(sum(leaving) + sum(here) <= total)
            totals.append(total)
        if cap is not None:
            for vars_ in arriving.values():
                m.Add(sum(vars_) <= cap)
        self.moves = sum(totals)
        self.county = sum(county)
        self.penalty = sum(penalty)
        if problem.max_moves is not None:
            m.Add(self.moves <= problem.max_moves)
        if rate:
            m.Add(self.moves >= problem.needed_moves())
        if share:
            p, q = problem.target_share.numerator, problem.target_share.denominator
            m.Add(q * (problem.backbone_rotated + self.county) >= p * (problem.rotated + self.moves))
        # The balance: b' = b − leaving + arriving, for every school enrolling the section.
        weights, self.exact = integer_weights(problem.weights(), n + max(problem.placement.values(), default=0))
        self.weights = weights
        terms = []
        movers: dict[str, int] = {}  # who could arrive at a school of each section: b's upper bound
        for (sec, _t), members in self.groups.items():
            if sec is not None:
                movers[sec] = movers.get(sec, 0) + sum(len(people) for people in members.values())
        for (school, section), coef in weights.items():
            leaving = [v for (s, _t, sc, _k), v in self.out.items() if s == section and sc == school]
            coming = [v for (s, _t, sc), v in self.into.items() if s == section and sc == school]
            base = problem.placement.get((school, section), 0)
            if not leaving and not coming:
                terms.append(coef * base * base)
                continue
            hi = base + movers.get(section, 0) if coming else base
            b = m.NewIntVar(0, hi, f"b_{section}_{school}")
            m.Add(b == base - sum(leaving) + sum(coming))
            sq = m.NewIntVar(0, hi * hi, f"sq_{section}_{school}")
            m.AddMultiplicationEquality(sq, [b, b])
            terms.append(coef * sq)
        self.balance = sum(terms)

    def solve(self, seconds: float, workers: int) -> tuple[cp_model.CpSolver, int]:
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = max(0.1, seconds)
        solver.parameters.num_workers = workers
        solver.parameters.random_seed = 14
        return solver, solver.Solve(self.m)

    def hint(self, solver: cp_model.CpSolver) -> None:
        self.m.ClearHints()
        for var in [*self.out.values(), *self.into.values()]:
            self.m.AddHint(var, solver.Value(var))

    def people(self, solver: cp_model.CpSolver) -> list[Move]:
        moves: list[Move] = []
        for section, targets in self.groups:
            members = self.groups[(section, targets)]
            out: dict[str, int] = {}
            movers: dict[str, list[Candidate]] = {}
            for (school, cls), people in members.items():
                k = solver.Value(self.out[(section, targets, school, cls)])
                if k:
                    chosen = sorted(people, key=lambda c: (c.id not in self.problem.included, c.rank))[:k]
                    movers.setdefault(school, []).extend(chosen)
                    out[school] = out.get(school, 0) + k
            into = {school: solver.Value(self.into[(section, targets, school)]) for school in targets}
            moves.extend(name_moves(self.problem, movers, pair_schools(out, into)))
        return moves


def _feasible(status: int) -> bool:
    return status in (cp_model.OPTIMAL, cp_model.FEASIBLE)


def optimise(problem: Problem, *, seconds: float = 20.0, why: dict[str, str] | None = None,
             start: list[Move] | None = None) -> Outcome:
    """The best proposal CP-SAT finds in `seconds`, starting from `start` (hinted) if given; `why`
    explains bars that cannot be met."""
    started = time.monotonic()
    workers = 1 if len(problem.candidates) <= 500 else 2
    unmet: dict[str, str] = {}
    for rate, share in ((True, True), (True, False), (False, True), (False, False)):
        model = _Model(problem, rate=rate, share=share)
        model.m.Minimize(model.balance)
        solver, status = model.solve(seconds * 0.75 - (time.monotonic() - started), workers)
        if status == cp_model.INFEASIBLE:
            continue
        if not _feasible(status):
            raise NoSolution(f"no solution within {seconds:.0f} s")
        if not rate:
            unmet["rotation_rate"] = (why or {}).get("rotation_rate", "cannot be met")
        if not share:
            unmet["backbone_share"] = (why or {}).get("backbone_share", "cannot be met")
        break
    else:
        raise Infeasible("the included staff cannot all move within max_moves and the incoming limit")
    objective, bound = solver.ObjectiveValue(), solver.BestObjectiveBound()
    gap = 0.0 if objective <= 0 else max(0.0, (objective - bound) / objective)
    first_optimal = status == cp_model.OPTIMAL
    # Second solve: the balance held at what was found; fewest moves, then the tie-break rules.
    model.m.Add(model.balance <= round(objective))
    model.hint(solver)
    model.m.Minimize(model.moves * (model.n * (3 * model.n + 5) + 1) + model.penalty)
    second, status2 = model.solve(seconds - (time.monotonic() - started), workers)
    chosen = second if _feasible(status2) else solver
    moves = model.people(chosen)
    optimal = first_optimal and status2 == cp_model.OPTIMAL
    if start is not None and not optimal and _score(problem, start, rate, share) < _score(problem, moves, rate, share):
        # The greedy's moves beat what the solver found in its time: keep them, with the gap
        # against the bound the solver proved.
        value = sum(w * placement_after(problem, start).get(key, 0) ** 2 for key, w in model.weights.items())
        return Outcome(moves=start, method="greedy", status="feasible",
                       gap=0.0 if value <= 0 else max(0.0, (value - bound) / value),
                       seconds=time.monotonic() - started, unmet=unmet, exact_weights=model.exact)
    return Outcome(moves=moves, method="cp-sat", status="optimal" if optimal else "feasible", gap=gap,
                   seconds=time.monotonic() - started, unmet=unmet, exact_weights=model.exact)


def _score(problem: Problem, moves: list[Move], rate: bool, share: bool) -> tuple:
    """The objective, lexicographically: the bars kept, Σ c·b² (exact), moves, the tie-break rules."""
    county = sum(problem.by_id[m.staff_id].county for m in moves)
    return ((rate and not problem.rate_met(len(moves))),
            (share and problem.share_met(len(moves), county) is False),
            problem.objective(moves), len(moves),
            sorted(problem.by_id[m.staff_id].rank[:2] for m in moves))
