"""Rotation proposals: ask, compute (inline or as a job), read, and turn into a draft plan.

A proposal stores only itself: the staff, rotations and plans change when (and only when) it is
turned into a plan, through the plan flow every other plan uses (rotations created `planned` in a
draft plan, approved together later). Enrollments are taken from partnership when the proposal
is asked for and kept in its inputs, so the job computes on the same schools the caller saw.
"""

from __future__ import annotations

import asyncio
import logging
from fractions import Fraction
from typing import Any
from uuid import UUID

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.auth import Principal
from services.common.clock import utcnow
from services.common.db import RowLock
from services.common.errors import Conflict, DomainError, NotFound, Unprocessable
from services.common.jobs import defer_task
from services.common.upstream import Upstream, segment
from services.rotation import stats
from services.rotation.clients import PartnershipClient
from services.rotation.models import RotationProposal
from services.rotation.proposals import figures
from services.rotation.proposals import repository as repo
from services.rotation.proposals.greedy import greedy
from services.rotation.proposals.model import SECTIONS, Problem, School
from services.rotation.proposals.optimiser import Infeasible, NoSolution, optimise
from services.rotation.proposals.schemas import ProposalCreate, ProposalResult
from services.rotation.schemas import DEFAULT_POLICY, PlanCreate, RotationCreate
from services.rotation.service.plans import PlanView, create_plan, get_plan
from services.rotation.service.rotations import create_rotation

_log = logging.getLogger("spp.rotation.proposals")
PROPOSAL_TASK = "proposal"


async def district_schools(upstream: Upstream, district_code: str) -> list[dict[str, Any]]:
    """The district's schools with their enrollments, from the registry (404 for an unknown district)."""
    if await upstream.get_json(f"/v1/districts/{segment(district_code)}", allow_404=True) is None:
        raise NotFound(f"district {district_code} does not exist", slug="district-not-found")
    body = await upstream.get_json("/v1/internal/schools", params={"district_code": district_code})
    return [{"code": s["code"], "name": s["name"],
             **{f"{sec}_enrollment": int(s.get(f"{sec}_enrollment") or 0) for sec in (*SECTIONS, "senior")}}
            for s in body["items"]]


async def create_proposal(*, session: AsyncSession, upstream: Upstream, district_code: str, data: ProposalCreate,
                          actor: Principal, sync_staff: int) -> RotationProposal:
    """Stored `done` with its result when the district has at most `sync_staff` active staff;
    otherwise stored `running` with a job deferred in the same transaction."""
    actor.require_writer()
    actor.require_write_in(district_code)
    schools = await district_schools(upstream, district_code)
    codes = {s["code"] for s in schools}
    errors = [{"field": f"body.exclude_school_codes.{i}", "message": f"{code} is not a school of {district_code}",
               "type": "unknown_reference"} for i, code in enumerate(data.exclude_school_codes) if code not in codes]
    known = await repo.staff_districts(session, [*data.include_staff_ids, *data.exclude_staff_ids])
    for name in ("include_staff_ids", "exclude_staff_ids"):
        for i, staff_id in enumerate(getattr(data, name)):
            if known.get(staff_id) != district_code:
                errors.append({"field": f"body.{name}.{i}", "type": "unknown_reference",
                               "message": f"{staff_id} is not a staff member of {district_code}"})
    if errors:
        raise Unprocessable("; ".join(e["message"] for e in errors[:5]), slug="unknown-reference",
                            extra={"errors": errors})
    proposal = RotationProposal(district_code=district_code, academic_year=data.academic_year, status="running",
                                inputs={**data.model_dump(mode="json"), "schools": schools}, created_by=actor.sub)
    session.add(proposal)
    await session.flush()
    if await repo.count_staff(session, district_code=district_code) > sync_staff:
        proposal.job_id = await defer_task(session, service="rotation", task=PROPOSAL_TASK,
                                           args={"proposal_id": str(proposal.id)})
        await session.flush()
        return proposal
    result = await compute(session, proposal)  # a rule it breaks is the answer (409), nothing stored
    proposal.status, proposal.result, proposal.finished_at = "done", result.model_dump(mode="json"), utcnow()
    await session.flush()
    return proposal


async def get_proposal(*, session: AsyncSession, district_code: str, proposal_id: UUID, actor: Principal,
                       lock: RowLock | None = None) -> RotationProposal:
    actor.require_read_in(district_code)
    proposal = await repo.get(session, proposal_id, lock=lock)
    if proposal is None or proposal.district_code != district_code:
        raise NotFound(f"rotation proposal {proposal_id} does not exist", slug="proposal-not-found")
    return proposal


# Computing ------------------------------------------------------------------------------------

async def load_problem(session: AsyncSession, proposal: RotationProposal) -> Problem:
    data = ProposalCreate.model_validate({k: v for k, v in proposal.inputs.items() if k != "schools"})
    start, end = data.dates
    district = proposal.district_code
    figures_ = await stats.rotation_stats(session, academic_year=data.academic_year, district_code=district)
    row = figures_.districts[0] if figures_.districts else None
    placement = await stats.backbone_placement(session, as_of=data.as_of, district_code=district)
    schools = [School(s["code"], s["name"], {sec: s[f"{sec}_enrollment"] for sec in (*SECTIONS, "senior")})
               for s in proposal.inputs["schools"]]
    excluded_staff = {str(i) for i in data.exclude_staff_ids}
    excluded_schools = frozenset(data.exclude_school_codes)
    candidates = [c for c in await repo.candidates(session, district_code=district, academic_year=data.academic_year,
                                                   as_of=data.as_of, start=start, end=end)
                  if c.id not in excluded_staff and c.school not in excluded_schools]
    target_rate = data.target_rate if data.target_rate is not None else (
        row.target_rate if row else DEFAULT_POLICY.target_rate)
    target_share = data.target_backbone_share if data.target_backbone_share is not None else (
        row.target_backbone_share if row else DEFAULT_POLICY.target_backbone_share)
    problem = Problem(
        district_code=district, academic_year=data.academic_year, mode=data.mode.value, schools=schools,
        placement={(i.school_code, i.section.value): i.backbone for i in placement.items
                   if i.section.value in SECTIONS and i.district_code == district},
        eligible=row.eligible if row else 0, rotated=row.rotated if row else 0,
        backbone_rotated=row.backbone_rotated if row else 0,
        target_rate=Fraction(target_rate), target_share=Fraction(target_share), candidates=candidates,
        keep_section=data.keep_section, prefer_same_subject=data.prefer_same_subject,
        included=frozenset(str(i) for i in data.include_staff_ids), excluded_schools=excluded_schools,
        max_incoming=data.max_incoming_per_school, max_moves=data.max_moves,
        subjects=await repo.subjects(session, district_code=district))
    _check_included(problem)
    return problem


def _check_included(problem: Problem) -> None:
    movable = {c.id for c in problem.movable()}
    failures = [{"staff_id": staff_id, "rule": "not-movable",
                 "detail": ("not eligible on 1 Sept, excluded, or already rotating in the year"
                            if staff_id not in problem.by_id else "no school it may go to under the constraints")}
                for staff_id in sorted(problem.included) if staff_id not in movable]
    if failures:
        raise Conflict(f"{len(failures)} included staff member(s) cannot move", slug="include-not-movable",
                       extra={"failures": failures})


def why_unmet(problem: Problem) -> dict[str, str]:
    """What stops each bar, in the district's numbers, said before solving."""
    movable = problem.movable()
    need = problem.needed_moves()
    limit = problem.max_moves
    room = None
    if problem.max_incoming is not None:
        room = problem.max_incoming * sum(1 for s in problem.schools if s.code not in problem.excluded_schools)
    rate = (f"the rate bar needs {need} more rotated staff ({problem.rotated} of {problem.eligible} eligible "
            f"rotated already, target {float(problem.target_rate):.4f}), but ")
    if limit is not None and limit < need:
        rate += f"max_moves is {limit}"
    elif len(movable) < need:
        rate += f"only {len(movable)} eligible staff can move under the constraints"
    elif room is not None and room < need:
        rate += f"the incoming limit admits at most {room} moves"
    else:
        rate += "the constraints together admit fewer moves"
    county = sum(1 for c in movable if c.county)
    moves = max(need, 0)
    required = next((q for q in range(county + 1) if problem.share_met(max(moves, q), q) is not False), None)
    if required is None:
        share = (f"the share bar needs at least {float(problem.target_share):.4f} of the rotated to be "
                 f"county-level-and-above backbone, but only {county} such staff can move "
                 f"({problem.backbone_rotated} of {problem.rotated} rotated already)")
    else:
        share = (f"the share bar needs {required} county-level-and-above backbone movers; the limits "
                 "(max_moves, the incoming limit, included staff) leave too few places")
    return {"rotation_rate": rate, "backbone_share": share}


def solve(problem: Problem, seconds: float) -> ProposalResult:
    """CP-SAT, or the greedy when CP-SAT finds nothing in time. CPU-bound: run in a thread."""
    why = why_unmet(problem)
    try:
        # On a large district the greedy's answer is the floor: kept when the solver has not
        # proved optimality and found nothing better in its time.
        start = greedy(problem).moves if len(problem.candidates) > 500 else None
        outcome, fallback = optimise(problem, seconds=seconds, why=why, start=start), None
    except NoSolution as exc:
        unmet = {bar: why[bar] for bar in why}
        outcome, fallback = greedy(problem, unmet=unmet), str(exc)
        moves, county = len(outcome.moves), sum(problem.by_id[m.staff_id].county for m in outcome.moves)
        outcome.unmet = {k: v for k, v in unmet.items()
                         if not (problem.rate_met(moves) if k == "rotation_rate"
                                 else problem.share_met(moves, county) is not False)}
    except Infeasible as exc:
        raise Conflict(str(exc), slug="proposal-infeasible") from None
    return figures.result(problem, outcome, time_limit=seconds, fallback=fallback)


async def compute(session: AsyncSession, proposal: RotationProposal) -> ProposalResult:
    problem = await load_problem(session, proposal)
    seconds = float(proposal.inputs.get("time_limit_seconds") or 15.0)
    return await asyncio.to_thread(solve, problem, seconds)


async def run_job(*, sessions: Any, args: dict[str, Any], attempts: int) -> None:
    """The worker's job: compute and store the result, or the reason it failed. A crash is retried
    by the queue; after `attempts` starts the proposal is reported failed."""
    proposal_id = UUID(args["proposal_id"])
    async with sessions() as session:
        proposal = await repo.start_attempt(session, proposal_id)
        await session.commit()
    if proposal is None:
        return
    if proposal.attempts > attempts:
        await _fail(sessions, proposal_id, f"the proposal failed {attempts} times; its worker stopped")
        return
    try:
        async with sessions() as session:
            result = await compute(session, proposal)
            await repo.finish(session, proposal_id, status="done", result=result.model_dump(mode="json"), detail=None)
            await session.commit()
    except DomainError as exc:
        await _fail(sessions, proposal_id, exc.detail)
    except Exception:
        if proposal.attempts < attempts:
            raise
        _log.exception("proposal failed", extra={"proposal_id": str(proposal_id)})
        await _fail(sessions, proposal_id, "the proposal could not be computed")


async def _fail(sessions: Any, proposal_id: UUID, detail: str) -> None:
    async with sessions() as session:
        await repo.finish(session, proposal_id, status="failed", result=None, detail=detail)
        await session.commit()


# From proposal to plan ------------------------------------------------------------------------

async def plan_from_proposal(*, session: AsyncSession, partnership: PartnershipClient, district_code: str,
                             proposal_id: UUID, title: str | None, actor: Principal) -> PlanView:
    """A draft plan holding one `planned` rotation per move, created through the ordinary rotation
    rules (the overlap constraint, the receiving school, the plan's year), in one transaction."""
    actor.require_writer()
    proposal = await get_proposal(session=session, district_code=district_code, proposal_id=proposal_id,
                                  actor=actor, lock="update")
    actor.require_write_in(district_code)
    if proposal.status != "done":
        raise Conflict(f"the proposal is {proposal.status}; only a finished proposal becomes a plan",
                       slug="proposal-not-ready")
    if proposal.plan_id is not None:
        raise Conflict("the proposal is already a plan", slug="proposal-planned",
                       extra={"plan_id": str(proposal.plan_id)})
    result = ProposalResult.model_validate(proposal.result)
    if not result.moves:
        raise Conflict("the proposal has no moves", slug="proposal-empty")
    inputs = ProposalCreate.model_validate({k: v for k, v in proposal.inputs.items() if k != "schools"})
    start, end = inputs.dates
    await _check_current(session, result)
    created = await create_plan(session=session, partnership=partnership, actor=actor, data=PlanCreate(
        district_code=district_code, academic_year=proposal.academic_year,
        title=title or f"{proposal.academic_year}学年交流轮岗方案 {str(proposal.id)[:8]}"))
    for move in result.moves:
        await create_rotation(session=session, partnership=partnership, actor=actor, data=RotationCreate(
            staff_id=move.staff_id, to_school_code=move.to_school_code, mode=inputs.mode, start_date=start,
            end_date=end, plan_id=created.read.id))
    proposal.plan_id = created.read.id
    await session.flush()
    # The plan as answered now, its rotations counted.
    return await get_plan(session=session, plan_id=created.read.id, actor=actor)


async def _check_current(session: AsyncSession, result: ProposalResult) -> None:
    """Everyone proposed still has the home school the proposal moves them from."""
    stored = await repo.staff_by_ids(session, [move.staff_id for move in result.moves])
    failures = []
    for move in result.moves:
        staff = stored.get(move.staff_id)
        if staff is None or staff.home_school_code != move.from_school_code or staff.status != "active":
            failures.append({"staff_id": str(move.staff_id), "rule": "proposal-stale",
                             "detail": f"{move.name} no longer works at {move.from_school_code}"})
    if failures:
        raise Conflict(f"{len(failures)} move(s) no longer fit the staff records; ask for a new proposal",
                       slug="proposal-stale", extra={"failures": failures})
