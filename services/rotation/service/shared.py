"""Helpers every rotation aggregate uses: field errors, the change feed row and school lookups."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.errors import Unprocessable
from services.common.outbox import record_change
from services.rotation.clients import PartnershipClient, SchoolRef
from services.rotation.directory import find_school


def field_error(field: str, message: str, kind: str = "unknown_reference") -> dict[str, Any]:
    return {"errors": [{"field": field, "message": message, "type": kind}]}


async def record(session: AsyncSession, entity: str, key: str, op: str, state: Any, before: Any = None) -> None:
    """Write the change feed row and its audit event in the same transaction as the change
    (services/common/outbox.py; `before`: the record as read before the change)."""
    await record_change(session, "rotation", entity=entity, key=key, op=op, state=state.model_dump(mode="json"),
                        before=None if before is None else before.model_dump(mode="json"))


async def known_school(session: AsyncSession, partnership: PartnershipClient, code: str, field: str) -> SchoolRef:
    """The school from the local school directory, or the partnership registry on a miss; 422 when
    unknown, 503 when partnership cannot be asked on a miss."""
    school = await find_school(session, partnership, code)
    if school is None:
        raise Unprocessable(f"school {code} does not exist", slug="unknown-school",
                            extra=field_error(f"body.{field}", "unknown school"))
    return school
