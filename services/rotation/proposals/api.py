"""Routes of rotation proposals: thin — authenticate, parse, call the service, shape the answer."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Request, Response

from services.common.auth import CurrentUser
from services.common.clients import upstream_client
from services.common.db import SessionDep
from services.common.errors import problem_responses
from services.common.idempotency import IdempotentRoute
from services.common.vocabulary import DistrictCodePath, location
from services.rotation.clients import PartnershipClient
from services.rotation.models import RotationProposal
from services.rotation.proposals import service
from services.rotation.proposals.schemas import OBJECTIVE, ProposalCreate, ProposalPlanCreate, ProposalRead
from services.rotation.schemas import PlanRead

PartnershipDep = Annotated[PartnershipClient, upstream_client("partnership")]

router = APIRouter(prefix="/v1/districts", tags=["rotation proposals"], route_class=IdempotentRoute)

CREATE_DESCRIPTION = f"""
Proposes who should rotate where so the district meets its bars for the academic year. {OBJECTIVE}
Only staff eligible on 1 Sept of the year move, nobody twice, and never out of the district. Each
move names the staff member, both schools and why, with both schools' backbone teachers per 100
students before and after; the answer gives the rotation rate, the backbone share and each
section's CV before and after. A bar that cannot be met says why. Nothing but the proposal is
stored. A district with more active staff than `SPP_PROPOSAL_SYNC_STAFF` is computed by a job:
202 with `Location` to poll (`status` `running` until `done` or `failed`); otherwise 201.
"""


def _read(proposal: RotationProposal) -> ProposalRead:
    return ProposalRead.model_validate(proposal)


@router.post("/{code}/rotation-proposals", status_code=201, response_model=ProposalRead,
             responses={202: {"model": ProposalRead, "description": "Accepted: computed by a job; poll Location"},
                        **problem_responses(403, 404, 409, 503)},
             summary="Propose rotations that meet the district's bars", description=CREATE_DESCRIPTION)
async def create_proposal(code: DistrictCodePath, data: ProposalCreate, session: SessionDep, actor: CurrentUser,
                          request: Request, response: Response) -> ProposalRead:
    proposal = await service.create_proposal(
        session=session, upstream=request.app.state.upstreams["partnership"], district_code=code, data=data,
        actor=actor, sync_staff=request.app.state.settings.proposal_sync_staff)
    response.headers["Location"] = location("districts", code, "rotation-proposals", proposal.id)
    if proposal.status == "running":
        response.status_code = 202
    return _read(proposal)


@router.get("/{code}/rotation-proposals/{proposal_id}", response_model=ProposalRead,
            responses=problem_responses(403, 404), summary="A rotation proposal (poll while `running`)")
async def get_proposal(code: DistrictCodePath, proposal_id: UUID, session: SessionDep,
                       actor: CurrentUser) -> ProposalRead:
    return _read(await service.get_proposal(session=session, district_code=code, proposal_id=proposal_id,
                                            actor=actor))


@router.post("/{code}/rotation-proposals/{proposal_id}/plan", status_code=201, response_model=PlanRead,
             responses=problem_responses(403, 404, 409, 503),
             summary="Turn a proposal into a draft rotation plan (approve it with the plan flow)")
async def plan_from_proposal(code: DistrictCodePath, proposal_id: UUID, session: SessionDep, actor: CurrentUser,
                             partnership: PartnershipDep, response: Response,
                             data: ProposalPlanCreate | None = None) -> PlanRead:
    view = await service.plan_from_proposal(session=session, partnership=partnership, district_code=code,
                                            proposal_id=proposal_id, title=data.title if data else None,
                                            actor=actor)
    response.headers["Location"] = location("rotation-plans", view.read.id)
    return view.read


routers = [router]
