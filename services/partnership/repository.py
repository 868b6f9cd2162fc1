"""Queries over the partnership tables. Takes and returns models; never commits."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from sqlalchemy import or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.db import RowLock, locked
from services.common.paging import PageParams, keyset
from services.partnership.models import Activity, District, Pairing, School


async def get_district(session: AsyncSession, code: str, *, lock: RowLock | None = None) -> District | None:
    if lock is None:
        return await session.get(District, code)
    return (await session.exec(locked(select(District).where(District.code == code), lock))).scalars().first()


async def get_school(session: AsyncSession, code: str, *, lock: RowLock | None = None) -> School | None:
    if lock is None:
        return await session.get(School, code)
    return (await session.exec(locked(select(School).where(School.code == code), lock))).scalars().first()


async def get_pairing(session: AsyncSession, pairing_id: UUID, *, lock: RowLock | None = None) -> Pairing | None:
    stmt = select(Pairing).where(Pairing.id == pairing_id)
    return (await session.exec(locked(stmt, lock))).scalars().first()


async def list_districts(session: AsyncSession, *, page: PageParams, only: frozenset[str] | None) -> list[District]:
    stmt = select(District)
    if only is not None:
        stmt = stmt.where(District.code.in_(only))
    return list((await session.exec(keyset(stmt, [District.code], page))).scalars())


async def list_schools(session: AsyncSession, *, page: PageParams, only: frozenset[str] | None,
                       district_code: str | None, locality: str | None, stage: str | None) -> list[School]:
    stmt = select(School)
    if only is not None:
        stmt = stmt.where(School.district_code.in_(only))
    if district_code:
        stmt = stmt.where(School.district_code == district_code)
    if locality:
        stmt = stmt.where(School.locality == locality)
    if stage:
        stmt = stmt.where(School.stage == stage)
    return list((await session.exec(keyset(stmt, [School.code], page))).scalars())


def _schools_in(districts: frozenset[str] | set[str]):
    return select(School.code).where(School.district_code.in_(districts))


def _touches_school(codes):
    return or_(Pairing.lead_school_code.in_(codes), Pairing.partner_school_code.in_(codes))


async def list_pairings(session: AsyncSession, *, page: PageParams, only: frozenset[str] | None,
                        district_code: str | None, school_code: str | None,
                        status: str | None) -> list[Pairing]:
    stmt = select(Pairing)
    if only is not None:
        stmt = stmt.where(_touches_school(_schools_in(only)))
    if district_code:
        stmt = stmt.where(_touches_school(_schools_in({district_code})))
    if school_code:
        stmt = stmt.where(or_(Pairing.lead_school_code == school_code, Pairing.partner_school_code == school_code))
    if status:
        stmt = stmt.where(Pairing.status == status)
    return list((await session.exec(keyset(stmt, [Pairing.created_at, Pairing.id], page))).scalars())


async def list_activities(session: AsyncSession, *, page: PageParams, only: frozenset[str] | None,
                          district_code: str | None, pairing_id: UUID | None, kind: str | None,
                          date_from: date | None, date_to: date | None) -> list[Activity]:
    stmt = select(Activity)
    if only is not None or district_code:
        pairings = select(Pairing.id)
        if only is not None:
            pairings = pairings.where(_touches_school(_schools_in(only)))
        if district_code:
            pairings = pairings.where(_touches_school(_schools_in({district_code})))
        stmt = stmt.where(Activity.pairing_id.in_(pairings))
    if pairing_id:
        stmt = stmt.where(Activity.pairing_id == pairing_id)
    if kind:
        stmt = stmt.where(Activity.kind == kind)
    if date_from:
        stmt = stmt.where(Activity.date >= date_from)
    if date_to:
        stmt = stmt.where(Activity.date <= date_to)
    return list((await session.exec(keyset(stmt, [Activity.date, Activity.id], page))).scalars())
