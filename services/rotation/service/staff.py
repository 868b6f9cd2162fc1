"""The staff registry: who works where, and who may change it (design.md §5, scoped by district)."""

from __future__ import annotations

from uuid import UUID

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.auth import Principal
from services.common.clock import utcnow
from services.common.db import RowLock
from services.common.errors import Conflict, NotFound, register_constraint
from services.common.etag import require_version
from services.common.paging import PageParams
from services.rotation import repository as repo
from services.rotation.clients import PartnershipClient
from services.rotation.models import Staff
from services.rotation.schemas import (
    StaffCreate,
    StaffRead,
    StaffUpdate,
)
from services.rotation.service.shared import known_school, record

register_constraint("uq_staff_staff_no", Conflict, "duplicate-staff-no",
                    "a staff member with this staff_no already exists")


async def create_staff(*, session: AsyncSession, partnership: PartnershipClient, data: StaffCreate,
                       actor: Principal) -> Staff:
    actor.require_writer()
    # Checked before anything is written: a school missing from the local directory is asked of
    # partnership, and when partnership is down then nothing is written (503).
    school = await known_school(session, partnership, data.home_school_code, "home_school_code")
    actor.require_write_in(school.district_code)
    staff = Staff(**data.model_dump(), home_district_code=school.district_code)
    session.add(staff)
    await session.flush()  # uq_staff_staff_no decides duplicates, also under races
    await record(session, "staff", staff.staff_no, "create", StaffRead.model_validate(staff))
    return staff


async def get_staff(*, session: AsyncSession, staff_id: UUID, actor: Principal, lock: RowLock | None = None) -> Staff:
    staff = await repo.get_staff(session, staff_id, lock=lock)
    if staff is None:
        raise NotFound(f"staff member {staff_id} does not exist", slug="staff-not-found")
    actor.require_read_in(staff.home_district_code)
    return staff


async def update_staff(*, session: AsyncSession, partnership: PartnershipClient, staff_id: UUID,
                       data: StaffUpdate, actor: Principal, expected_version: int | None = None) -> Staff:
    actor.require_writer()
    changes = data.model_dump(exclude_unset=True)
    new_school = None
    if "home_school_code" in changes:
        new_school = await known_school(session, partnership, changes["home_school_code"], "home_school_code")
    staff = await get_staff(session=session, staff_id=staff_id, actor=actor, lock="update")
    actor.require_write_in(staff.home_district_code)
    require_version(expected_version, staff.version)
    before = StaffRead.model_validate(staff)
    if new_school is not None and new_school.code != staff.home_school_code:
        # Moving someone to another district's school needs the right to write there too.
        actor.require_write_in(new_school.district_code)
        staff.home_district_code = new_school.district_code
    for field, value in changes.items():
        setattr(staff, field, value)
    staff.version += 1
    staff.updated_at = utcnow()
    await session.flush()
    await record(session, "staff", staff.staff_no, "update", StaffRead.model_validate(staff), before)
    return staff


async def list_staff(*, session: AsyncSession, actor: Principal, page: PageParams, district_code: str | None,
                     home_school_code: str | None, eligible_for_year: int | None,
                     status: str | None) -> list[Staff]:
    return await repo.list_staff(session, page=page, only=actor.list_scope(district_code),
                                 district_code=district_code, home_school_code=home_school_code,
                                 eligible_for_year=eligible_for_year, status=status)


async def staff_by_numbers(*, session: AsyncSession, actor: Principal, staff_nos: list[str]) -> list[Staff]:
    """Staff by their numbers (工号), for another service resolving a file's staff_no that its
    local copy does not hold yet: scoped like the list, so a district caller sees its own only."""
    return await repo.staff_by_numbers(session, staff_nos=sorted(set(staff_nos)), only=actor.list_scope(None))
