"""Partnership rules: who may change what, the pairing state machine, and activity admission."""

from __future__ import annotations

import uuid
from datetime import date
from uuid import UUID

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import register_districts
from services.common.auth import Principal, Role
from services.common.clock import utcnow
from services.common.db import RowLock
from services.common.errors import Conflict, Forbidden, NotFound, Unprocessable, register_constraint
from services.common.etag import require_version
from services.common.outbox import record_change
from services.common.paging import PageParams
from services.partnership import repository as repo
from services.partnership import stats
from services.partnership.models import Activity, District, Pairing, School
from services.partnership.schemas import (
    ActivityCreate,
    ActivityRead,
    DistrictCreate,
    DistrictRead,
    DistrictUpdate,
    PairingCreate,
    PairingRead,
    PairingStatus,
    PartnershipStats,
    SchoolBriefList,
    SchoolCreate,
    SchoolRead,
    SchoolUpdate,
)

register_constraint("pk_districts", Conflict, "duplicate-district", "a district with this code already exists")
register_constraint("pk_schools", Conflict, "duplicate-school", "a school with this code already exists")
register_constraint(
    "ex_pairings_schools_overlap", Conflict, "pairing-overlap",
    "these two schools already have a pairing whose dates overlap and that has not ended",
)
register_constraint("ck_pairings_distinct_schools", Unprocessable, "same-school",
                    "a school cannot be paired with itself")
register_constraint("fk_schools_district", Unprocessable, "unknown-district", "the district does not exist")

# The districts of an audit event (services/common/audit.py) on records whose state names none:
# a pairing concerns both schools' districts, an activity those of its pairing.
register_districts("partnership", "pairing", """
    SELECT district_code FROM partnership.schools
    WHERE code IN (CAST(:state AS jsonb) ->> 'lead_school_code', CAST(:state AS jsonb) ->> 'partner_school_code')""")
register_districts("partnership", "activity", """
    SELECT s.district_code FROM partnership.pairings p
    JOIN partnership.schools s ON s.code IN (p.lead_school_code, p.partner_school_code)
    WHERE p.id = CAST(CAST(:state AS jsonb) ->> 'pairing_id' AS uuid)""")

# proposed → active ⇄ suspended → ended; a proposal or a suspended pairing may also be ended.
TRANSITIONS: dict[str, tuple[set[PairingStatus], PairingStatus]] = {
    "activate": ({PairingStatus.proposed, PairingStatus.suspended}, PairingStatus.active),
    "suspend": ({PairingStatus.active}, PairingStatus.suspended),
    "end": ({PairingStatus.proposed, PairingStatus.active, PairingStatus.suspended}, PairingStatus.ended),
}


async def _changed(session: AsyncSession, entity: str, key: str, op: str, state, *,
                   version: int | None = None, before=None) -> None:
    """Write the change feed row and its audit event in the same transaction as the change
    (services/common/outbox.py; `before`: the record as read before the change).
    `version` goes into the state so read models (rotation's school directory) can tell a late,
    older state from a newer one; the bulk import's state (the whole row) carries it too."""
    body = state.model_dump(mode="json")
    if version is not None:
        body["version"] = version
    await record_change(session, "partnership", entity=entity, key=key, op=op, state=body,
                        before=None if before is None else before.model_dump(mode="json"))


# Districts ---------------------------------------------------------------------------------

async def create_district(*, session: AsyncSession, data: DistrictCreate, actor: Principal) -> District:
    actor.require_city_admin()
    district = District(code=data.code, name=data.name)
    session.add(district)
    await session.flush()
    await _changed(session, "district", district.code, "create", DistrictRead.model_validate(district))
    return district


async def get_district(*, session: AsyncSession, code: str, actor: Principal,
                       lock: RowLock | None = None) -> District:
    district = await repo.get_district(session, code, lock=lock)
    if district is None:
        raise NotFound(f"district {code} does not exist", slug="district-not-found")
    actor.require_read_in(code)
    return district


async def update_district(*, session: AsyncSession, code: str, data: DistrictUpdate, actor: Principal,
                          expected_version: int | None = None) -> District:
    actor.require_city_admin()
    district = await get_district(session=session, code=code, actor=actor, lock="update")
    require_version(expected_version, district.version)
    before = DistrictRead.model_validate(district)
    district.name = data.name
    district.version += 1
    district.updated_at = utcnow()
    await session.flush()
    await _changed(session, "district", district.code, "update", DistrictRead.model_validate(district),
                   before=before)
    return district


async def list_districts(*, session: AsyncSession, actor: Principal, page: PageParams) -> list[District]:
    return await repo.list_districts(session, page=page, only=actor.readable_districts())


# Schools -----------------------------------------------------------------------------------

async def _require_district(session: AsyncSession, code: str) -> District:
    district = await repo.get_district(session, code)
    if district is None:
        raise Unprocessable(f"district {code} does not exist", slug="unknown-district",
                            extra={"errors": [{"field": "body.district_code", "message": "unknown district",
                                               "type": "unknown_reference"}]})
    return district


async def create_school(*, session: AsyncSession, data: SchoolCreate, actor: Principal) -> School:
    actor.require_write_in(data.district_code)
    await _require_district(session, data.district_code)
    school = School(**data.model_dump())
    session.add(school)
    await session.flush()
    await _changed(session, "school", school.code, "create", SchoolRead.model_validate(school),
                   version=school.version)
    return school


async def get_school(*, session: AsyncSession, code: str, actor: Principal, lock: RowLock | None = None) -> School:
    school = await repo.get_school(session, code, lock=lock)
    if school is None:
        raise NotFound(f"school {code} does not exist", slug="school-not-found")
    actor.require_read_in(school.district_code)
    return school


async def update_school(*, session: AsyncSession, code: str, data: SchoolUpdate, actor: Principal,
                        expected_version: int | None = None) -> School:
    school = await get_school(session=session, code=code, actor=actor, lock="update")
    actor.require_write_in(school.district_code)
    require_version(expected_version, school.version)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "district_code" in changes and changes["district_code"] != school.district_code:
        actor.require_write_in(changes["district_code"])
        await _require_district(session, changes["district_code"])
    before = SchoolRead.model_validate(school)
    for field, value in changes.items():
        setattr(school, field, value)
    school.version += 1
    school.updated_at = utcnow()
    await session.flush()
    await _changed(session, "school", school.code, "update", SchoolRead.model_validate(school),
                   version=school.version, before=before)
    return school


async def list_schools(*, session: AsyncSession, actor: Principal, page: PageParams, district_code: str | None,
                       locality: str | None, stage: str | None) -> list[School]:
    return await repo.list_schools(session, page=page, only=actor.list_scope(district_code),
                                   district_code=district_code, locality=locality, stage=stage)


# Pairings ----------------------------------------------------------------------------------

async def _known_school(session: AsyncSession, code: str, field: str) -> School:
    school = await repo.get_school(session, code)
    if school is None:
        raise Unprocessable(f"school {code} does not exist", slug="unknown-school",
                            extra={"errors": [{"field": f"body.{field}", "message": "unknown school",
                                               "type": "unknown_reference"}]})
    return school


async def create_pairing(*, session: AsyncSession, data: PairingCreate, actor: Principal) -> Pairing:
    actor.require_writer()
    if data.lead_school_code == data.partner_school_code:
        raise Unprocessable("a school cannot be paired with itself", slug="same-school",
                            extra={"errors": [{"field": "body.partner_school_code",
                                               "message": "must differ from lead_school_code",
                                               "type": "value_error"}]})
    lead = await _known_school(session, data.lead_school_code, "lead_school_code")
    partner = await _known_school(session, data.partner_school_code, "partner_school_code")
    actor.require_write_in(lead.district_code, partner.district_code)
    pairing = Pairing(id=uuid.uuid4(), **data.model_dump())
    session.add(pairing)
    await session.flush()  # the exclusion constraint decides overlaps here, also under races
    await _changed(session, "pairing", str(pairing.id), "create", PairingRead.model_validate(pairing))
    return pairing


async def _pairing_districts(session: AsyncSession, pairing: Pairing) -> tuple[str, str]:
    lead = await repo.get_school(session, pairing.lead_school_code)
    partner = await repo.get_school(session, pairing.partner_school_code)
    assert lead is not None and partner is not None  # foreign keys guarantee both
    return lead.district_code, partner.district_code


async def get_pairing(*, session: AsyncSession, pairing_id: UUID, actor: Principal,
                      lock: RowLock | None = None) -> Pairing:
    pairing = await repo.get_pairing(session, pairing_id, lock=lock)
    if pairing is None:
        raise NotFound(f"pairing {pairing_id} does not exist", slug="pairing-not-found")
    actor.require_read_in(*await _pairing_districts(session, pairing))
    return pairing


async def transition_pairing(*, session: AsyncSession, pairing_id: UUID, action: str,
                             actor: Principal, expected_version: int | None = None) -> Pairing:
    pairing = await get_pairing(session=session, pairing_id=pairing_id, actor=actor, lock="update")
    actor.require_write_in(*await _pairing_districts(session, pairing))
    require_version(expected_version, pairing.version)
    allowed_from, target = TRANSITIONS[action]
    if pairing.status not in allowed_from:
        raise Conflict(f"cannot {action} a pairing that is {pairing.status}", slug="illegal-transition",
                       extra={"from": pairing.status, "action": action})
    before = PairingRead.model_validate(pairing)
    pairing.status = target
    pairing.version += 1
    pairing.updated_at = utcnow()
    await session.flush()
    await _changed(session, "pairing", str(pairing.id), "state", PairingRead.model_validate(pairing),
                   before=before)
    return pairing


async def list_pairings(*, session: AsyncSession, actor: Principal, page: PageParams, district_code: str | None,
                        school_code: str | None, status: str | None) -> list[Pairing]:
    return await repo.list_pairings(session, page=page, only=actor.list_scope(district_code),
                                    district_code=district_code, school_code=school_code, status=status)


# Activities --------------------------------------------------------------------------------

def _may_record_activity(actor: Principal, pairing: Pairing, districts: tuple[str, str]) -> bool:
    if actor.role == Role.school_admin:
        # design.md §5: a school admin records activities of pairings that involve their schools.
        return bool({pairing.lead_school_code, pairing.partner_school_code} & actor.schools)
    return any(actor.can_write_district(code) for code in districts)


async def record_activity(*, session: AsyncSession, pairing_id: UUID, data: ActivityCreate,
                          actor: Principal) -> Activity:
    # A share lock keeps the pairing from being suspended or ended while the activity is admitted.
    pairing = await get_pairing(session=session, pairing_id=pairing_id, actor=actor, lock="share")
    if not _may_record_activity(actor, pairing, await _pairing_districts(session, pairing)):
        raise Forbidden("you may not record activities for this pairing", slug="district-scope")
    if pairing.status != PairingStatus.active:
        raise Conflict(f"activities can only be recorded on an active pairing; this one is {pairing.status}",
                       slug="pairing-not-active")
    if not pairing.start_date <= data.date <= pairing.end_date:
        raise Conflict(f"the activity date {data.date} is outside the pairing "
                       f"({pairing.start_date} to {pairing.end_date})", slug="activity-outside-pairing")
    activity = Activity(id=uuid.uuid4(), pairing_id=pairing.id, **data.model_dump())
    session.add(activity)
    await session.flush()
    await _changed(session, "activity", str(activity.id), "create", ActivityRead.model_validate(activity))
    return activity


async def list_activities(*, session: AsyncSession, actor: Principal, page: PageParams, district_code: str | None,
                          pairing_id: UUID | None, kind: str | None, date_from: date | None,
                          date_to: date | None) -> list[Activity]:
    return await repo.list_activities(session, page=page, only=actor.list_scope(district_code),
                                      district_code=district_code, pairing_id=pairing_id, kind=kind,
                                      date_from=date_from, date_to=date_to)


# Figures for the gateway and rotation (docs/internal-api.md → Partnership) -----------------

async def partnership_stats(*, session: AsyncSession, actor: Principal, as_of: date, period_from: date,
                            period_to: date, district_code: str | None) -> PartnershipStats:
    actor.require_figures_scope(district_code)
    rows = await stats.partnership_stats(session, as_of=as_of, period_from=period_from, period_to=period_to,
                                         district_code=district_code)
    return PartnershipStats(as_of=as_of, period_from=period_from, period_to=period_to, districts=rows)


async def school_briefs(*, session: AsyncSession, actor: Principal, district_code: str | None) -> SchoolBriefList:
    actor.require_figures_scope(district_code)
    return SchoolBriefList(items=await stats.school_briefs(session, district_code=district_code))
