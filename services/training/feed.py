"""The training change feed (services/common/outbox.py): one row per change, in the same transaction.

Entities and their keys, as consumers see them:

- `studio` — the studio id; `create`, `state` (closed);
- `membership` — `<studio_id>:<staff_id>`; `create` (joined), `state` (left);
- `session` — the session id; `create`, `update`;
- `attendance` — the session id; `update` with the new list (`AttendanceRead`) whenever it changes;
- `training_credit` — `<source>:<reference>` (the ledger's natural key); `create`, `update` (a
  session's credits follow its hours and date), `delete` (an attendee removed; state null).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import register_districts
from services.common.outbox import record_change, record_changes

SCHEMA = "training"
CREDIT = "training_credit"


def credit_key(source: str, reference: str) -> str:
    return f"{source}:{reference}"


async def changed(session: AsyncSession, entity: str, key: str, op: str, state: BaseModel | None,
                  before: BaseModel | None = None) -> None:
    """The feed row and its audit event; `before` is the record as read before the change."""
    await record_change(session, SCHEMA, entity=entity, key=key, op=op,
                        state=None if state is None else state.model_dump(mode="json"),
                        before=None if before is None else before.model_dump(mode="json"))


async def credits_changed(session: AsyncSession, op: str, rows: list[Any], *,
                          was: dict[str, Any] | None = None) -> None:
    """Feed rows for ledger credits (ORM objects or result rows with the TrainingHoursRead fields).

    For the audit trail: a deleted credit was the row itself; an updated one (a session's credits
    following its hours and date) was the row with the fields in `was`."""
    from services.training.schemas import TrainingHoursRead

    ordered = sorted(rows, key=lambda r: (r.source, r.reference))  # a stable order for consumers
    states = [TrainingHoursRead.model_validate(row) for row in ordered]
    before: list[dict[str, Any] | None] = [
        state.model_dump(mode="json") if op == "delete"
        else state.model_copy(update=was).model_dump(mode="json") if was is not None and op == "update"
        else None for state in states]
    await record_changes(session, SCHEMA, entity=CREDIT, changes=[
        (credit_key(row.source, row.reference), op, None if op == "delete" else state.model_dump(mode="json"))
        for row, state in zip(ordered, states, strict=True)], before=before)


# The districts of an audit event (services/common/audit.py) on records whose state names none:
# a membership's and a session's studio, an attendance's session's studio, a credit's staff member.
register_districts(SCHEMA, "membership", """
    SELECT district_code FROM training.studios WHERE id = CAST(CAST(:state AS jsonb) ->> 'studio_id' AS uuid)""")
register_districts(SCHEMA, "session", """
    SELECT district_code FROM training.studios WHERE id = CAST(CAST(:state AS jsonb) ->> 'studio_id' AS uuid)""")
register_districts(SCHEMA, "attendance", """
    SELECT st.district_code FROM training.sessions se JOIN training.studios st ON st.id = se.studio_id
    WHERE se.id = CAST(CAST(:state AS jsonb) ->> 'session_id' AS uuid)""")
register_districts(SCHEMA, CREDIT, """
    SELECT home_district_code FROM training.staff_directory
    WHERE id = CAST(CAST(:state AS jsonb) ->> 'staff_id' AS uuid)""")
