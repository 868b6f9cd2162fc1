"""Counts of movers per school turned into named moves, never sending anyone to their own school.

The optimiser decides, for each group of interchangeable movers, how many leave each school and
how many arrive at each. Any such counts with out_i + in_i ≤ total at every school can be paired
without a self-move: repeatedly serve the school with the most left to send and receive (the
classic argument keeps out_i + in_i ≤ remaining total true at every step).
"""

from __future__ import annotations

from collections.abc import Sequence

from services.rotation.proposals.model import Candidate, Move, Problem


class FlowError(Exception):
    """Counts that cannot be paired without a self-move (the model should never produce them)."""


def pair_schools(out: dict[str, int], into: dict[str, int]) -> list[tuple[str, str]]:
    """(from, to) pairs realising the counts, with from ≠ to."""
    out = {k: v for k, v in out.items() if v > 0}
    into = {k: v for k, v in into.items() if v > 0}
    total = sum(out.values())
    if total != sum(into.values()):
        raise FlowError("as many must arrive as leave")
    pairs: list[tuple[str, str]] = []
    while total:
        busiest = max(set(out) | set(into), key=lambda k: (out.get(k, 0) + into.get(k, 0), k))
        if into.get(busiest, 0) > 0:
            sources = [k for k in out if k != busiest]
            if not sources:
                raise FlowError(f"only {busiest} can send to {busiest}")
            source, target = max(sources, key=lambda k: (out[k], k)), busiest
        else:
            targets = [k for k in into if k != busiest]
            if not targets:
                raise FlowError(f"only {busiest} can receive from {busiest}")
            source, target = busiest, max(targets, key=lambda k: (into[k], k))
        pairs.append((source, target))
        for side, key in ((out, source), (into, target)):
            side[key] -= 1
            if not side[key]:
                del side[key]
        total -= 1
    return pairs


def name_moves(problem: Problem, movers: dict[str, Sequence[Candidate]],
               pairs: list[tuple[str, str]]) -> list[Move]:
    """Who of each school's movers goes where. With `prefer_same_subject` a mover goes, where the
    counts allow, to a school that already teaches their subject in their section."""
    slots: dict[str, list[str]] = {}
    for source, target in pairs:
        slots.setdefault(source, []).append(target)
    moves: list[Move] = []
    for school, targets in slots.items():
        people = sorted(movers[school], key=lambda c: c.rank)
        if len(people) != len(targets):
            raise FlowError(f"{school}: {len(people)} movers for {len(targets)} places")
        targets = sorted(targets)
        for person in people:
            index = 0
            if problem.prefer_same_subject and person.subject:
                index = next((i for i, t in enumerate(targets)
                              if person.subject in problem.subjects.get((t, person.section), ())), 0)
            moves.append(Move(person.id, school, targets.pop(index)))
    return moves
