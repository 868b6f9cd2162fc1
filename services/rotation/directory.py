"""Rotation's school directory: a local read model of partnership's school registry (design.md §2).

Kept from partnership's change feed (`school` changes, key = school code, state = the school) by
the background consumer of services/common/feed_consumer.py. Reference checks (a staff member's
home school, a rotation's receiving school) and bulk staff imports read it first and ask
partnership only on a miss (a school created a moment ago, not yet through the feed); partnership
down then is a 503 before anything is written. Only the consumer writes the directory.

A school moved to another district (partnership's `district_code` changed) carries its people with
it, in the same transaction that applies the school: rotation's staff of that school and its
rotations that are not over yet take the new district, and each changed record goes on rotation's
own feed (with a bumped `version`), so training's staff directory follows too. Completed and
withdrawn rotations keep the districts they had: they record where the schools were when the stay
happened, and no figure reads them by district (rotation counts staff by their home district).
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.feed_consumer import FeedSpec
from services.common.outbox import Change
from services.rotation.clients import PartnershipClient, SchoolRef

SCHOOL_ENTITY = "school"
# Misses of a bulk import asked of partnership at once, so one file cannot flood it.
LOOKUP_CONCURRENCY = 8

# Partnership bumps a school's `version` on every change: a late, older state never wins. A state
# without a version (written before partnership put it on the feed) always applies, in feed order.
_UPSERT = text("""
    INSERT INTO rotation.school_directory AS d
        (code, name, district_code, stage, locality, primary_enrollment, junior_enrollment, senior_enrollment,
         version)
    VALUES (:code, :name, :district_code, :stage, :locality, :primary_enrollment, :junior_enrollment,
            :senior_enrollment, :version)
    ON CONFLICT (code) DO UPDATE SET
        name = excluded.name, district_code = excluded.district_code, stage = excluded.stage,
        locality = excluded.locality, primary_enrollment = excluded.primary_enrollment,
        junior_enrollment = excluded.junior_enrollment, senior_enrollment = excluded.senior_enrollment,
        version = excluded.version, synced_at = now()
    WHERE d.version IS NULL OR excluded.version IS NULL OR d.version <= excluded.version""")
_DELETE = text("DELETE FROM rotation.school_directory WHERE code = :code")


def _row(state: dict[str, Any]) -> dict[str, Any]:
    version = state.get("version")
    return {"code": state["code"], "name": state.get("name") or state["code"],
            "district_code": state["district_code"], "stage": state.get("stage"), "locality": state.get("locality"),
            "primary_enrollment": int(state.get("primary_enrollment") or 0),
            "junior_enrollment": int(state.get("junior_enrollment") or 0),
            "senior_enrollment": int(state.get("senior_enrollment") or 0),
            "version": None if version is None else int(version)}


# Rotation's own work, as its feed names it (services/common/app.py ServiceToken); the request id
# is the one of partnership's change that moved the school, so an integrator can trace the cause.
_ACTOR = "service:rotation"
# The schools of the page, with the request id of the last change of each.
_PAGE = "page AS (SELECT * FROM unnest(CAST(:codes AS text[]), CAST(:request_ids AS text[])) AS p(code, request_id))"
# Reconciled against the directory as it stands after the page (not the page's states): a late,
# older state that the version check refused moves nobody, and staff whose district was read from
# partnership on a miss are set right once the school reaches the directory.
_MOVE_STAFF = text(f"""
    WITH {_PAGE},
    moved AS (
        UPDATE rotation.staff s SET home_district_code = d.district_code, version = s.version + 1, updated_at = now()
        FROM rotation.school_directory d JOIN page ON page.code = d.code
        WHERE s.home_school_code = d.code AND s.home_district_code <> d.district_code
        RETURNING s.staff_no AS key, to_jsonb(s) AS state, page.request_id)
    INSERT INTO rotation.changes (entity, key, op, state, actor, request_id)
    SELECT 'staff', key, 'update', state, :actor, request_id FROM moved ORDER BY key""")
# A rotation that is not over yet (planned, approved, active) is read, scoped and counted by its
# schools' districts today: "works at" (§4.6) places an active full-time stay by to_district_code.
# One statement per side, since a statement may change a row only once (both schools may move).
_OPEN = "('planned', 'approved', 'active')"
_MOVE_ROTATIONS = [text(f"""
    WITH {_PAGE},
    moved AS (
        UPDATE rotation.rotations r SET {side}_district_code = d.district_code, version = r.version + 1,
                                        updated_at = now()
        FROM rotation.school_directory d JOIN page ON page.code = d.code
        WHERE r.{side}_school_code = d.code AND r.{side}_district_code <> d.district_code AND r.status IN {_OPEN}
        RETURNING r.id::text AS key, to_jsonb(r) AS state, page.request_id)
    INSERT INTO rotation.changes (entity, key, op, state, actor, request_id)
    SELECT 'rotation', key, 'update', state, :actor, request_id FROM moved ORDER BY key""")
    for side in ("from", "to")]


async def follow_schools(conn: AsyncConnection, request_ids: dict[str, str | None]) -> None:
    """Give the staff and the open rotations of these schools their school's district from the
    directory, with a change-feed row for each record changed (none when nothing moved)."""
    if not request_ids:
        return
    params = {"codes": list(request_ids), "request_ids": list(request_ids.values()), "actor": _ACTOR}
    for statement in (_MOVE_STAFF, *_MOVE_ROTATIONS):
        await conn.execute(statement, params)


# The page's schools, locked in code order before any is written: a staff import's merge locks the
# schools it reads in the same order (services/rotation/imports.py), so neither waits on the other
# in a cycle.
_LOCK_PAGE = text("SELECT code FROM rotation.school_directory WHERE code = ANY(CAST(:codes AS text[])) "
                  "ORDER BY code FOR UPDATE")


async def apply_school_changes(conn: AsyncConnection, changes: list[Change]) -> None:
    """Apply a page of partnership's feed in order; districts, pairings and activities are skipped.
    Then the people of the schools the page changed follow their school's district."""
    codes = sorted({change.key for change in changes if change.entity == SCHOOL_ENTITY})
    if codes:
        await conn.execute(_LOCK_PAGE, {"codes": codes})
    upserts: list[dict[str, Any]] = []
    touched: dict[str, str | None] = {}
    for change in changes:
        if change.entity != SCHOOL_ENTITY:
            continue
        if change.state is None:
            if upserts:
                await conn.execute(_UPSERT, upserts)
                upserts = []
            await conn.execute(_DELETE, {"code": change.key})
            continue
        upserts.append(_row(change.state))
        touched[change.state["code"]] = change.request_id
    if upserts:
        await conn.execute(_UPSERT, upserts)
    await follow_schools(conn, touched)


SCHOOL_FEED = FeedSpec(name="rotation.school_directory", producer="partnership", schema="rotation",
                       apply=apply_school_changes)


async def find_school(session: AsyncSession, partnership: PartnershipClient, code: str) -> SchoolRef | None:
    """The school from the local directory, or from partnership on a miss (None: unknown there
    too; `UpstreamUnavailable` when partnership cannot be asked).

    The row is read FOR SHARE: a write that stores the school's district (a staff member's home
    district, a rotation's) then commits before the consumer can move the school, whose staff and
    rotations update then sees it; or it waits for the move and reads the new district."""
    row = (await session.execute(text(
        "SELECT code, name, district_code FROM rotation.school_directory WHERE code = :code FOR SHARE"),
        {"code": code})).mappings().first()
    if row is not None:
        return SchoolRef.model_validate(dict(row))
    return await partnership.school(code)


_DISTRICTS = text("SELECT code, district_code FROM rotation.school_directory WHERE code IN :codes"
                  ).bindparams(bindparam("codes", expanding=True))


async def school_districts(session: AsyncSession, partnership: PartnershipClient, codes: set[str]) -> dict[str, str]:
    """The district of each of `codes` that is a known school: the directory first, then
    partnership for the few it does not hold yet (one call each). Unknown codes are left out."""
    found: dict[str, str] = {}
    if codes:
        found = {r.code: r.district_code for r in await session.execute(_DISTRICTS, {"codes": sorted(codes)})}
    gate = asyncio.Semaphore(LOOKUP_CONCURRENCY)

    async def ask(code: str) -> SchoolRef | None:
        async with gate:
            return await partnership.school(code)

    for school in await asyncio.gather(*(ask(code) for code in sorted(codes - found.keys()))):
        if school is not None:
            found[school.code] = school.district_code
    return found
