"""District rotation policies: one per district, the default until a district writes its own."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.auth import Principal
from services.common.clock import utcnow
from services.common.errors import Unprocessable
from services.common.etag import require_version
from services.rotation import repository as repo
from services.rotation.clients import PartnershipClient
from services.rotation.models import RotationPolicy
from services.rotation.schemas import (
    DEFAULT_POLICY,
    PolicyRead,
    PolicyWrite,
)
from services.rotation.service.shared import field_error, record


def _policy_read(district_code: str, policy: RotationPolicy | None) -> PolicyRead:
    if policy is None:
        return PolicyRead(district_code=district_code, is_default=True, **DEFAULT_POLICY.model_dump())
    return PolicyRead.model_validate(policy)


async def get_policy(*, session: AsyncSession, district_code: str, actor: Principal) -> PolicyRead:
    actor.require_read_in(district_code)
    return _policy_read(district_code, await repo.get_policy(session, district_code))


async def put_policy(*, session: AsyncSession, partnership: PartnershipClient, district_code: str,
                     data: PolicyWrite, actor: Principal, expected_version: int | None = None) -> PolicyRead:
    """Set the whole policy. A district that never set one is at version 0 (its ETag `"v0"`)."""
    actor.require_write_in(district_code)
    if not await partnership.district_exists(district_code):
        raise Unprocessable(f"district {district_code} does not exist", slug="unknown-district",
                            extra=field_error("path.district_code", "unknown district"))
    values = {**data.model_dump(), "updated_by": actor.sub, "updated_at": utcnow()}
    current = await repo.get_policy(session, district_code, lock="update")
    require_version(expected_version, current.version if current is not None else 0)
    before = None if current is None else _policy_read(district_code, current)
    if current is not None:
        for field, value in values.items():
            setattr(current, field, value)
        current.version += 1
        await session.flush()
        policy = current
    else:
        created = await repo.insert_policy(session, district_code, values, overwrite=expected_version is None)
        if created is None:  # another first PUT committed since we looked: this If-Match is stale
            raced = await repo.get_policy(session, district_code)
            require_version(expected_version, raced.version if raced is not None else 1)
        assert created is not None
        policy = created
    read = _policy_read(district_code, policy)
    await record(session, "rotation_policy", district_code, "create" if policy.version == 1 else "update", read,
                 before)
    return read
