"""Rotation's school directory: a local read model of partnership's school registry (design.md §2).

Kept from partnership's change feed (`school` changes, key = school code, state = the school) by
the background consumer of services/common/feed_consumer.py. Reference checks (a staff member's
home school, a rotation's receiving school) and bulk staff imports read it first and ask
partnership only on a miss (a school created a moment ago, not yet through the feed); partnership
down then is a 503 before anything is written. Only the consumer writes the directory.
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


async def apply_school_changes(conn: AsyncConnection, changes: list[Change]) -> None:
    """Apply a page of partnership's feed in order; districts, pairings and activities are skipped."""
    upserts: list[dict[str, Any]] = []
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
    if upserts:
        await conn.execute(_UPSERT, upserts)


SCHOOL_FEED = FeedSpec(name="rotation.school_directory", producer="partnership", schema="rotation",
                       apply=apply_school_changes)


async def find_school(session: AsyncSession, partnership: PartnershipClient, code: str) -> SchoolRef | None:
    """The school from the local directory, or from partnership on a miss (None: unknown there
    too; `UpstreamUnavailable` when partnership cannot be asked)."""
    row = (await session.execute(text(
        "SELECT code, name, district_code FROM rotation.school_directory WHERE code = :code"),
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
