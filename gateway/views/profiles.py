"""Profiles of one staff member and one school, composed from the services that own their parts.

The record itself is needed (its owner down is a 503, unknown is a 404), and so is where the staff
member works (rotation's §4.6 rule, `/v1/internal/staff/{id}/workplace`); the other parts degrade
one by one (null, named in `degraded`). Scope is checked by each service on the forwarded token.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request

from gateway.clients import (
    Membership,
    PairingBrief,
    PartnershipClient,
    RotationClient,
    RotationRecord,
    TrainingClient,
)
from gateway.views.calls import settle
from gateway.views.schemas import (
    MembershipOut,
    PairingOut,
    RotationOut,
    SchoolOut,
    SchoolProfile,
    SchoolStaffOut,
    StaffProfile,
    StaffRecordOut,
    TrainingHoursOut,
)
from services.common.auth import CurrentUser
from services.common.calendar import today
from services.common.errors import NotFound, UpstreamUnavailable, problem_responses

router = APIRouter(prefix="/api/v1", tags=["views"])

AsOf = Annotated[date | None, Query(description="Defaults to today (China Standard Time)")]


def _rotation(rotation: RotationRecord, as_of: date) -> RotationOut:
    return RotationOut(**rotation.model_dump(), current=rotation.status == "active"
                       and rotation.start_date <= as_of <= rotation.end_date)


def _membership(membership: Membership, as_of: date) -> MembershipOut:
    current = membership.joined_on <= as_of and (membership.left_on is None or membership.left_on >= as_of)
    return MembershipOut(**membership.model_dump(exclude={"studio_status"}), current=current)


@router.get("/staff/{staff_id}/profile", response_model=StaffProfile, responses=problem_responses(403, 404, 503),
            summary="A staff member: record, rotations, studio memberships, training hours",
            description="The staff record (rotation service; 503 when it is down), every rotation of the "
                        "staff member, the studios they host or belong to and their training hours in the "
                        "5-year window up to `as_of` (training service; null and named in `degraded` when "
                        "it is down). `working_at` is where they work on `as_of`: the receiving school of an "
                        "active full-time rotation whose dates contain `as_of`, else the home school.")
async def staff_profile(staff_id: UUID, request: Request, principal: CurrentUser, as_of: AsOf = None) -> StaffProfile:
    day = as_of or today()
    rotation = RotationClient.of(request)
    training = TrainingClient.of(request)
    settled = await settle({
        "staff": rotation.staff(staff_id),
        "workplace": rotation.workplace(staff_id, as_of=day),  # §4.6 is rotation's rule
        "rotations": rotation.rotations(staff_id=staff_id),
        "memberships": training.memberships(staff_id),
        "summary": training.summary(staff_id=staff_id, as_of=day),
    })
    if not settled.ok("staff", "workplace"):
        raise UpstreamUnavailable("the rotation service is unavailable", slug="upstream-unavailable",
                                          extra={"upstream": "rotation"})
    staff, workplace = settled.get("staff"), settled.get("workplace")
    if staff is None or workplace is None:
        raise NotFound(f"staff member {staff_id} does not exist", slug="staff-not-found")
    rotations = settled.get("rotations")
    summary = settled.get("summary")
    memberships = settled.get("memberships")
    training_failed = not settled.ok("memberships", "summary")
    return StaffProfile(
        as_of=day, staff=StaffRecordOut(**staff.model_dump()), working_at=workplace.school_code,
        rotations=[_rotation(r, day) for r in rotations] if rotations is not None else None,
        memberships=(None if training_failed else [_membership(m, day) for m in memberships.items]),
        training_hours=(None if training_failed else TrainingHoursOut(
            window_years=summary.window_years, window_start=summary.window_start,
            total_hours=summary.total_hours, by_source=summary.by_source,
            threshold=summary.threshold, met=summary.met)),
        degraded=settled.degraded())


def _pairing(pairing: PairingBrief, school_code: str, as_of: date) -> PairingOut:
    return PairingOut(**pairing.model_dump(), role="lead" if pairing.lead_school_code == school_code else "partner",
                      active=pairing.status == "active" and pairing.start_date <= as_of <= pairing.end_date)


@router.get("/schools/{code}/profile", response_model=SchoolProfile, responses=problem_responses(403, 404, 503),
            summary="A school: record, pairings, rotations in and out, staff and backbone counts",
            description="The school (partnership registry; 503 when it is down), its pairings on either "
                        "side, the rotations into and out of it, its active staff (home school) and the "
                        "county-level-and-above backbone teachers working there on `as_of` by section "
                        "(rotation service; null and named in `degraded` when it is down).")
async def school_profile(code: str, request: Request, principal: CurrentUser, as_of: AsOf = None) -> SchoolProfile:
    day = as_of or today()
    partnership = PartnershipClient.of(request)
    rotation = RotationClient.of(request)
    settled = await settle({
        "school": partnership.school(code),
        "pairings": partnership.pairings(school_code=code),
        "rotations": rotation.rotations(school_code=code),
        "staff": rotation.school_staff(school_code=code, as_of=day),
    })
    if not settled.ok("school"):
        raise UpstreamUnavailable("the partnership service is unavailable", slug="upstream-unavailable",
                                          extra={"upstream": "partnership"})
    school = settled.get("school")
    if school is None:
        raise NotFound(f"school {code} does not exist", slug="school-not-found")
    principal.require_read_in(school.district_code)
    pairings = settled.get("pairings")
    rotations = settled.get("rotations")
    staff = settled.get("staff")
    return SchoolProfile(
        as_of=day, school=SchoolOut(**school.model_dump()),
        pairings=[_pairing(p, code, day) for p in pairings] if pairings is not None else None,
        rotations_in=([_rotation(r, day) for r in rotations if r.to_school_code == code]
                      if rotations is not None else None),
        rotations_out=([_rotation(r, day) for r in rotations if r.from_school_code == code]
                       if rotations is not None else None),
        staff=(SchoolStaffOut(staff=staff.staff, backbone_by_section=staff.backbone_by_section)
               if staff is not None else None),
        degraded=settled.degraded())
