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

from services.common.outbox import record_change, record_changes

SCHEMA = "training"
CREDIT = "training_credit"


def credit_key(source: str, reference: str) -> str:
    return f"{source}:{reference}"


async def changed(session: AsyncSession, entity: str, key: str, op: str, state: BaseModel | None) -> None:
    await record_change(session, SCHEMA, entity=entity, key=key, op=op,
                        state=None if state is None else state.model_dump(mode="json"))


async def credits_changed(session: AsyncSession, op: str, rows: list[Any]) -> None:
    """Feed rows for ledger credits (ORM objects or result rows with the TrainingHoursRead fields)."""
    from services.training.schemas import TrainingHoursRead

    ordered = sorted(rows, key=lambda r: (r.source, r.reference))  # a stable order for consumers
    await record_changes(session, SCHEMA, entity=CREDIT, changes=[
        (credit_key(row.source, row.reference), op,
         None if op == "delete" else TrainingHoursRead.model_validate(row).model_dump(mode="json"))
        for row in ordered])
