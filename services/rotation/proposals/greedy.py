"""The fallback when CP-SAT finds nothing in its time: one move at a time.

1. Included staff move first, each where it helps the balance most (or hurts it least).
2. While some move of a county-level backbone teacher lowers Σ c·b² (so the CV of its section),
   make the one that lowers it most: every step improves the CV.
3. Then fill the rate bars with movers that leave the balance as it is, county-level backbone
   first while the share is short, in the tie-break order (teachers first, backbone first);
   when the share still falls short, balance-changing backbone teachers are used as well, each
   where it costs the CV least.
"""

from __future__ import annotations

import time
from fractions import Fraction

from services.rotation.proposals.model import Candidate, Move, Problem
from services.rotation.proposals.optimiser import Outcome


class _State:
    def __init__(self, problem: Problem) -> None:
        self.p = problem
        self.b = dict(problem.placement)
        self.w = problem.weights()
        self.incoming: dict[str, int] = {}
        self.moves: list[Move] = []
        self.moved: set[str] = set()
        self.county = 0

    def room(self, school: str) -> bool:
        cap = self.p.max_incoming
        return cap is None or self.incoming.get(school, 0) < cap

    def full(self) -> bool:
        return self.p.max_moves is not None and len(self.moves) >= self.p.max_moves

    def delta(self, c: Candidate, target: str) -> Fraction:
        section = self.p.balance_section(c)
        if section is None:
            return Fraction(0)
        a, z = (c.school, section), (target, section)
        return (self.w.get(a, 0) * (1 - 2 * self.b.get(a, 0)) + self.w.get(z, 0) * (2 * self.b.get(z, 0) + 1))

    def best_target(self, c: Candidate) -> tuple[Fraction, str] | None:
        options = [(self.delta(c, t), t) for t in self.p.destination_filter(c) if t != c.school and self.room(t)]
        return min(options) if options else None

    def apply(self, c: Candidate, target: str) -> None:
        section = self.p.balance_section(c)
        if section is not None:
            self.b[(c.school, section)] -= 1
            self.b[(target, section)] = self.b.get((target, section), 0) + 1
        self.incoming[target] = self.incoming.get(target, 0) + 1
        self.moves.append(Move(c.id, c.school, target))
        self.moved.add(c.id)
        self.county += c.county


def greedy(problem: Problem, *, unmet: dict[str, str] | None = None) -> Outcome:
    started = time.monotonic()
    state = _State(problem)
    pool = sorted(problem.movable(), key=lambda c: c.rank)
    for c in pool:
        if c.id in problem.included and not state.full():
            best = state.best_target(c)
            if best is not None:
                state.apply(c, best[1])
    # 2. Balance: the single best improving move, as long as there is one. The change of moving
    # one teacher from a to z is w_a(1 − 2b_a) + w_z(2b_z + 1): the best source and the best
    # target of each group are found separately, so a step costs O(schools), not O(people).
    balancing = [c for c in pool if problem.balance_section(c) is not None]
    groups: dict[tuple, list[Candidate]] = {}
    for c in balancing:
        groups.setdefault((c.section, problem.destination_filter(c)), []).append(c)
    while not state.full():
        best: tuple | None = None
        for (section, targets), people in groups.items():
            first: dict[str, Candidate] = {}
            for c in people:
                if c.id not in state.moved:
                    first.setdefault(c.school, c)
            ends = sorted((state.w.get((t, section), 0) * (2 * state.b.get((t, section), 0) + 1), t)
                          for t in targets if state.room(t))[:2]
            for school, c in first.items():
                gain = state.w.get((school, section), 0) * (1 - 2 * state.b.get((school, section), 0))
                end = next((e for e in ends if e[1] != school), None)
                if end is not None and gain + end[0] < 0:
                    option = (gain + end[0], c.rank, c.id, end[1])
                    best = option if best is None or option < best else best
        if best is None:
            break
        state.apply(problem.by_id[best[2]], best[3])
    # 3. The rate bars, with movers that keep the balance first (county-level while the share is
    # short), then balance-changing teachers where they cost the CV least.
    need = problem.needed_moves()
    neutral = [c for c in pool if problem.balance_section(c) is None and c.id not in state.moved]
    county = [c for c in neutral if c.county]
    while not state.full():
        rate_short = len(state.moves) < need
        share_short = problem.share_met(len(state.moves), state.county) is False
        if not (rate_short or share_short):
            break
        if _place(state, county if share_short else neutral):
            continue
        options = [(best[0], c.rank, c, best[1]) for c in balancing if c.id not in state.moved
                   for best in [state.best_target(c)] if best is not None]
        if options:
            _, _, c, target = min(options, key=lambda x: x[:2])
            state.apply(c, target)
        elif not (rate_short and share_short and _place(state, neutral)):
            break
    return Outcome(moves=state.moves, method="greedy", status="feasible", gap=None,
                   seconds=time.monotonic() - started, unmet=dict(unmet or {}))


def _place(state: _State, people: list[Candidate]) -> bool:
    """Move the first of `people` (in tie-break order) who has somewhere to go."""
    while people:
        c = people.pop(0)
        if c.id in state.moved:
            continue
        target = _emptiest(state, c)
        if target is not None:
            state.apply(c, target)
            return True
    return False


def _emptiest(state: _State, c: Candidate) -> str | None:
    """For a mover who leaves the balance as it is: the allowed school with the fewest arrivals."""
    options = [(state.incoming.get(t, 0), t) for t in state.p.destination_filter(c) if t != c.school and state.room(t)]
    return min(options)[1] if options else None
