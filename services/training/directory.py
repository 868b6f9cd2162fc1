"""Training's staff directory: a local read model of rotation's staff (design.md §2).

Kept from rotation's change feed (`staff` changes, key staff_no, state = the staff record) by the
background consumer of services/common/feed_consumer.py. The home district comes with the state:
rotation stores each staff member's `home_district_code` (looked up in the school registry when
the home school is set) and writes it into every staff state it puts on the feed, single writes
and bulk imports alike, so training needs no copy of the schools to place staff in districts.

Reference checks read the directory first and ask rotation only on a miss (a staff member created
a moment ago, not yet through the feed); rotation down then is a 503 before anything is written.
Only the consumer writes the directory, so its rows always sit exactly at the saved cursor.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.feed_consumer import FeedSpec
from services.common.outbox import Change
from services.training.clients import RotationClient, StaffRef

STAFF_ENTITY = "staff"

# A late, older state (the feed is ordered by transaction id, not by commit) never overwrites a
# newer one: rotation bumps `version` on every change of a staff record.
_UPSERT = text("""
    INSERT INTO training.staff_directory AS d
        (id, staff_no, home_school_code, home_district_code, status, version)
    VALUES (:id, :staff_no, :home_school_code, :home_district_code, :status, :version)
    ON CONFLICT (id) DO UPDATE SET
        staff_no = excluded.staff_no, home_school_code = excluded.home_school_code,
        home_district_code = excluded.home_district_code, status = excluded.status,
        version = excluded.version, synced_at = now()
    WHERE d.version <= excluded.version""")
_DELETE = text("DELETE FROM training.staff_directory WHERE staff_no = :staff_no")


def _row(state: dict[str, Any]) -> dict[str, Any]:
    return {"id": UUID(str(state["id"])), "staff_no": state["staff_no"],
            "home_school_code": state["home_school_code"],
            "home_district_code": state.get("home_district_code"),
            "status": state.get("status") or "active", "version": int(state.get("version") or 1)}


async def apply_staff_changes(conn: AsyncConnection, changes: list[Change]) -> None:
    """Apply a page of rotation's feed in order; other entities (rotations, policies, plans) are
    skipped. Consecutive upserts go in one round trip (executemany)."""
    upserts: list[dict[str, Any]] = []
    for change in changes:
        if change.entity != STAFF_ENTITY:
            continue
        if change.state is None:  # rotation never deletes staff today; a delete carries the staff_no key
            if upserts:
                await conn.execute(_UPSERT, upserts)
                upserts = []
            await conn.execute(_DELETE, {"staff_no": change.key})
            continue
        upserts.append(_row(change.state))
    if upserts:
        await conn.execute(_UPSERT, upserts)


STAFF_FEED = FeedSpec(name="training.staff_directory", producer="rotation", schema="training",
                      apply=apply_staff_changes)


async def local_staff(session: AsyncSession, staff_id: UUID) -> StaffRef | None:
    row = (await session.execute(text(
        "SELECT id, home_school_code, home_district_code, status FROM training.staff_directory WHERE id = :id"),
        {"id": staff_id})).mappings().first()
    return None if row is None else StaffRef.model_validate(dict(row))


async def find_staff(session: AsyncSession, rotation: RotationClient, staff_id: UUID) -> StaffRef | None:
    """The staff member from the local directory, or from rotation on a miss (None: unknown to
    rotation too; `UpstreamUnavailable` when rotation cannot be asked)."""
    return await local_staff(session, staff_id) or await rotation.get_staff(staff_id)
