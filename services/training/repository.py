"""Queries over the training tables. Takes and returns models or plain values; never commits.

Rules that must survive concurrent requests are held by PostgreSQL or by a row lock taken here:
`lock_studio` serialises everything that counts or changes a studio's memberships.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID

from sqlalchemy import ARRAY, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.db import RowLock, locked
from services.common.paging import PageParams, keyset
from services.training.config import STUDIO_SESSION_SOURCE
from services.training.models import Attendance, Membership, Session, Studio, TrainingHours

UUIDS = ARRAY(PG_UUID(as_uuid=True))


# Studios and memberships -----------------------------------------------------------------------

async def get_studio(session: AsyncSession, studio_id: UUID, *, lock: RowLock | None = None) -> Studio | None:
    stmt = select(Studio).where(Studio.id == studio_id)
    return (await session.exec(locked(stmt, lock))).scalars().first()


async def list_studios(session: AsyncSession, *, page: PageParams, only: frozenset[str] | None,
                       district_code: str | None, kind: str | None, status: str | None,
                       host_staff_id: UUID | None) -> list[Studio]:
    stmt = select(Studio)
    if only is not None:
        stmt = stmt.where(Studio.district_code.in_(only))
    if district_code:
        stmt = stmt.where(Studio.district_code == district_code)
    if kind:
        stmt = stmt.where(Studio.kind == kind)
    if status:
        stmt = stmt.where(Studio.status == status)
    if host_staff_id:
        stmt = stmt.where(Studio.host_staff_id == host_staff_id)
    return list((await session.exec(keyset(stmt, [Studio.start_date, Studio.id], page))).scalars())


async def count_current_members(session: AsyncSession, studio_id: UUID) -> int:
    stmt = select(func.count()).select_from(Membership).where(
        Membership.studio_id == studio_id, Membership.left_on.is_(None))
    return (await session.exec(stmt)).scalar_one()


async def current_membership(session: AsyncSession, studio_id: UUID, staff_id: UUID) -> Membership | None:
    stmt = select(Membership).where(Membership.studio_id == studio_id, Membership.staff_id == staff_id,
                                    Membership.left_on.is_(None))
    return (await session.exec(stmt)).scalars().first()


async def latest_membership(session: AsyncSession, studio_id: UUID, staff_id: UUID) -> Membership | None:
    stmt = (select(Membership).where(Membership.studio_id == studio_id, Membership.staff_id == staff_id)
            .order_by(Membership.joined_on.desc()).limit(1))
    return (await session.exec(stmt)).scalars().first()


async def list_members(session: AsyncSession, *, studio_id: UUID, page: PageParams,
                       current: bool | None) -> list[Membership]:
    stmt = select(Membership).where(Membership.studio_id == studio_id)
    if current is True:
        stmt = stmt.where(Membership.left_on.is_(None))
    elif current is False:
        stmt = stmt.where(Membership.left_on.is_not(None))
    return list((await session.exec(keyset(stmt, [Membership.joined_on, Membership.id], page))).scalars())


async def attended_after(session: AsyncSession, *, studio_id: UUID, staff_id: UUID, day: date) -> bool:
    """Whether the staff member attended a session of the studio dated after `day`."""
    stmt = select(func.count()).select_from(Attendance).join(Session, Session.id == Attendance.session_id).where(
        Session.studio_id == studio_id, Attendance.staff_id == staff_id, Session.session_date > day)
    return (await session.exec(stmt)).scalar_one() > 0


async def not_members_on(session: AsyncSession, *, studio_id: UUID, day: date,
                         staff_ids: list[UUID]) -> list[UUID]:
    """The given staff ids that were not members of the studio on `day` (ranges are inclusive)."""
    stmt = text("""
        SELECT given.staff_id
        FROM unnest(:ids) AS given(staff_id)
        WHERE NOT EXISTS (
            SELECT 1 FROM training.memberships m
            WHERE m.studio_id = :studio_id AND m.staff_id = given.staff_id
              AND m.joined_on <= :day AND (m.left_on IS NULL OR m.left_on >= :day))
        ORDER BY given.staff_id
    """).bindparams(bindparam("ids", type_=UUIDS))
    rows = await session.execute(stmt, {"ids": staff_ids, "studio_id": studio_id, "day": day})
    return [row.staff_id for row in rows]


# Sessions and attendance -----------------------------------------------------------------------

async def get_session(session: AsyncSession, session_id: UUID, *, lock: RowLock | None = None) -> Session | None:
    stmt = select(Session).where(Session.id == session_id)
    return (await session.exec(locked(stmt, lock))).scalars().first()


async def list_sessions(session: AsyncSession, *, studio_id: UUID, page: PageParams) -> list[Session]:
    stmt = select(Session).where(Session.studio_id == studio_id)
    return list((await session.exec(keyset(stmt, [Session.starts_at, Session.id], page))).scalars())


async def attendees_not_members(session: AsyncSession, *, session_id: UUID) -> list[UUID]:
    """Attendees of a session who were not members of its studio on the session's date."""
    rows = await session.execute(text("""
        SELECT a.staff_id
        FROM training.attendance a JOIN training.sessions s ON s.id = a.session_id
        WHERE a.session_id = :session_id AND NOT EXISTS (
            SELECT 1 FROM training.memberships m
            WHERE m.studio_id = s.studio_id AND m.staff_id = a.staff_id
              AND m.joined_on <= s.session_date AND (m.left_on IS NULL OR m.left_on >= s.session_date))
        ORDER BY a.staff_id
    """), {"session_id": session_id})
    return [row.staff_id for row in rows]


_CREDIT_COLUMNS = "id, staff_id, hours, earned_on, source, reference, session_id, created_at"


async def replace_attendance(session: AsyncSession, *, session_id: UUID,
                             staff_ids: list[UUID]) -> tuple[bool, list, list]:
    """Make the attendance list exactly `staff_ids` and the session's credits follow it.

    Removed attendees lose their credit (deleted here first, so the change feed can name them;
    `fk_training_hours_attendance ON DELETE CASCADE` would do it otherwise); new attendees get one
    credit each, keyed (`studio_session`, `<session_id>:<staff_id>`). Returns whether the list
    changed, the removed credits (source, reference) and the created credits (all columns).
    """
    params = {"session_id": session_id, "ids": staff_ids, "source": STUDIO_SESSION_SOURCE}
    removed_credits = (await session.execute(text(f"""
        DELETE FROM training.training_hours
        WHERE session_id = :session_id AND NOT (staff_id = ANY(:ids))
        RETURNING {_CREDIT_COLUMNS}
    """).bindparams(bindparam("ids", type_=UUIDS)), params)).all()
    removed = (await session.execute(text("""
        DELETE FROM training.attendance
        WHERE session_id = :session_id AND NOT (staff_id = ANY(:ids))
        RETURNING staff_id
    """).bindparams(bindparam("ids", type_=UUIDS)), params)).all()
    added = (await session.execute(text("""
        INSERT INTO training.attendance (session_id, staff_id)
        SELECT :session_id, staff_id FROM unnest(:ids) AS given(staff_id)
        ON CONFLICT (session_id, staff_id) DO NOTHING
        RETURNING staff_id
    """).bindparams(bindparam("ids", type_=UUIDS)), params)).all()
    created_credits = (await session.execute(text(f"""
        INSERT INTO training.training_hours (id, staff_id, hours, earned_on, source, reference, session_id)
        SELECT gen_random_uuid(), a.staff_id, s.hours, s.session_date, :source,
               s.id::text || ':' || a.staff_id::text, s.id
        FROM training.attendance a JOIN training.sessions s ON s.id = a.session_id
        WHERE a.session_id = :session_id
        ORDER BY a.staff_id
        ON CONFLICT (source, reference) DO NOTHING
        RETURNING {_CREDIT_COLUMNS}
    """), params)).all()
    return bool(removed or added), list(removed_credits), list(created_credits)


async def sync_session_credits(session: AsyncSession, *, session_id: UUID) -> list:
    """Give a session's credits the session's current hours and date (after a PATCH); returns the
    credits that changed."""
    return list((await session.execute(text("""
        UPDATE training.training_hours t
        SET hours = s.hours, earned_on = s.session_date, updated_at = now(), version = t.version + 1
        FROM training.sessions s
        WHERE s.id = :session_id AND t.session_id = s.id
          AND (t.hours <> s.hours OR t.earned_on <> s.session_date)
        RETURNING t.id, t.staff_id, t.hours, t.earned_on, t.source, t.reference, t.session_id, t.created_at
    """), {"session_id": session_id})).all())


async def attendance_of(session: AsyncSession, *, session_id: UUID) -> tuple[list[UUID], int, Decimal]:
    """Attendee ids (sorted), their number and the hours the session credited, from the ledger."""
    row = (await session.execute(text("""
        SELECT coalesce(array_agg(a.staff_id ORDER BY a.staff_id), '{}') AS staff_ids,
               count(a.staff_id) AS attendees,
               (SELECT coalesce(sum(t.hours), 0) FROM training.training_hours t
                 WHERE t.session_id = :session_id) AS credited
        FROM training.attendance a WHERE a.session_id = :session_id
    """), {"session_id": session_id})).one()
    return list(row.staff_ids), row.attendees, row.credited


# The ledger ------------------------------------------------------------------------------------

async def get_credit(session: AsyncSession, credit_id: UUID) -> TrainingHours | None:
    return await session.get(TrainingHours, credit_id)


async def credit_by_key(session: AsyncSession, *, source: str, reference: str) -> TrainingHours | None:
    stmt = (select(TrainingHours).where(TrainingHours.source == source, TrainingHours.reference == reference)
            .execution_options(populate_existing=True))
    return (await session.exec(stmt)).scalars().first()


async def insert_credit_if_new(session: AsyncSession, *, credit_id: UUID, staff_id: UUID, hours: Decimal,
                               earned_on: date, source: str, reference: str) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on (source, reference): True when this call stored it.

    Under concurrent identical posts the loser waits on the unique key until the winner commits,
    then inserts nothing; its caller reads the winner's row.
    """
    row = (await session.execute(text("""
        INSERT INTO training.training_hours (id, staff_id, hours, earned_on, source, reference)
        VALUES (:id, :staff_id, :hours, :earned_on, :source, :reference)
        ON CONFLICT (source, reference) DO NOTHING
        RETURNING id
    """), {"id": credit_id, "staff_id": staff_id, "hours": hours, "earned_on": earned_on,
           "source": source, "reference": reference})).first()
    return row is not None


async def list_credits(session: AsyncSession, *, page: PageParams, staff_id: UUID | None,
                       source: str | None, earned_from: date | None, earned_to: date | None) -> list[TrainingHours]:
    stmt = select(TrainingHours)
    if staff_id:
        stmt = stmt.where(TrainingHours.staff_id == staff_id)
    if source:
        stmt = stmt.where(TrainingHours.source == source)
    if earned_from:
        stmt = stmt.where(TrainingHours.earned_on >= earned_from)
    if earned_to:
        stmt = stmt.where(TrainingHours.earned_on <= earned_to)
    return list((await session.exec(keyset(stmt, [TrainingHours.earned_on, TrainingHours.id], page))).scalars())


async def hours_by_source(session: AsyncSession, *, staff_id: UUID, after: date,
                          as_of: date) -> tuple[Decimal, dict[str, Decimal]]:
    """Total and per-source hours with `after < earned_on ≤ as_of`, in one grouping-sets query."""
    rows = (await session.execute(text("""
        SELECT source, grouping(source) AS is_total, coalesce(sum(hours), 0) AS hours
        FROM training.training_hours
        WHERE staff_id = :staff_id AND earned_on > :after AND earned_on <= :as_of
        GROUP BY GROUPING SETS ((source), ())
        ORDER BY is_total, source
    """), {"staff_id": staff_id, "after": after, "as_of": as_of})).all()
    total = next(row.hours for row in rows if row.is_total)
    return total, {row.source: row.hours for row in rows if not row.is_total}
