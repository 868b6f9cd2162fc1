"""The integration-client registry: who may get tokens by client credentials, and who was revoked.

Kept in the gateway's own schema (gateway_0003) because the gateway issues the tokens and is the
one that must refuse a revoked client's tokens. Secrets are random (256 bits) and stored only as an
scrypt hash, computed off the event loop. Queries here never commit: the request's session does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, StringConstraints
from pydantic import Field as PydanticField
from sqlalchemy import Column, Text, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import record_event
from services.common.clock import utcnow
from services.common.paging import PageParams, keyset

SCHEMA = "gateway"

# scrypt at n=2^14, r=8, p=1 (16 MiB, tens of ms): the parameters RFC 7914 suggests for interactive
# use. The secrets are random, so this guards a leaked table, not a guessable password.
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 2**14, 8, 1, 32


class IntegrationClient(SQLModel, table=True):
    __tablename__ = "integration_clients"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(primary_key=True)
    name: str
    role: str
    districts: list[str] = Field(default_factory=list, sa_column=Column(ARRAY(Text), nullable=False))
    secret_hash: str
    created_at: datetime = Field(default_factory=utcnow)
    created_by: str
    revoked_at: datetime | None = None
    revoked_by: str | None = None


DistrictCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]


class IntegrationClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "区教师管理系统", "role": "integrator", "districts": ["110105"]}]})

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    role: Literal["integrator", "viewer"]
    districts: list[DistrictCode] = PydanticField(
        default_factory=list, max_length=100,
        description="Districts the client may read; empty for a city-wide client")


_READ_EXAMPLE = {"client_id": "6f1c2a9e-3b7d-4c51-9a8e-2d4f6b8c0e1a", "name": "区教师管理系统", "role": "integrator",
                 "districts": ["110105"], "created_at": "2026-12-08T02:30:00Z", "created_by": "admin@jw.bj",
                 "revoked_at": None, "revoked_by": None}


class IntegrationClientRead(BaseModel):
    """A registered client, never with its secret."""

    model_config = ConfigDict(json_schema_extra={"examples": [_READ_EXAMPLE]})

    client_id: UUID
    name: str
    role: Literal["integrator", "viewer"]
    districts: list[str]
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = PydanticField(default=None, description="Set once the client is deleted")
    revoked_by: str | None = None

    @classmethod
    def of(cls, client: IntegrationClient) -> IntegrationClientRead:
        return cls(client_id=client.id, name=client.name, role=client.role,  # type: ignore[arg-type]
                   districts=sorted(client.districts), created_at=client.created_at, created_by=client.created_by,
                   revoked_at=client.revoked_at, revoked_by=client.revoked_by)


class IntegrationClientCreated(IntegrationClientRead):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {**_READ_EXAMPLE, "client_secret": "q3Jx0rV5mC1kzq8b0e9rXk2h3uYtL7wPz4sNnA6dE1o"}]})

    client_secret: str = PydanticField(description="Shown only in this answer; store it now")


# --- secrets ----------------------------------------------------------------------------------------

def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text_: str) -> bytes:
    return base64.urlsafe_b64decode(text_ + "=" * (-len(text_) % 4))


def hash_secret(secret: str, *, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=SCRYPT_LEN)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def secret_matches(secret: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        expected = _unb64(digest)
        actual = hashlib.scrypt(secret.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return scheme == "scrypt" and hmac.compare_digest(actual, expected)


# Checked when the client id is unknown, so an unknown id takes as long as a wrong secret.
_DUMMY_HASH = hash_secret("no-such-client", salt=b"\0" * 16)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


async def check_secret(secret: str, stored: str | None) -> bool:
    """scrypt is CPU-bound for tens of milliseconds: run it in a worker thread."""
    matches = await asyncio.to_thread(secret_matches, secret, stored or _DUMMY_HASH)
    return matches and stored is not None


# --- queries ----------------------------------------------------------------------------------------

async def create(session: AsyncSession, *, data: IntegrationClientCreate, actor: str) -> tuple[IntegrationClient, str]:
    secret = new_secret()
    client = IntegrationClient(id=uuid4(), name=data.name, role=data.role,
                               districts=sorted(set(data.districts)),
                               secret_hash=await asyncio.to_thread(hash_secret, secret), created_by=actor)
    session.add(client)
    await session.flush()
    await record_event(session, SCHEMA, entity=AUDIT_ENTITY, key=str(client.id), op="create",
                       after=_audited(client), districts=client.districts)
    return client, secret


async def get_active(session: AsyncSession, client_id: UUID) -> IntegrationClient | None:
    stmt = select(IntegrationClient).where(IntegrationClient.id == client_id,
                                           IntegrationClient.revoked_at.is_(None))  # type: ignore[union-attr]
    return (await session.exec(stmt)).scalars().first()  # type: ignore[call-overload]


async def list_active(session: AsyncSession, *, page: PageParams) -> list[IntegrationClient]:
    stmt = select(IntegrationClient).where(IntegrationClient.revoked_at.is_(None))  # type: ignore[union-attr]
    stmt = keyset(stmt, [IntegrationClient.created_at, IntegrationClient.id], page)
    return list((await session.exec(stmt)).scalars())  # type: ignore[call-overload]


async def revoke(session: AsyncSession, *, client_id: UUID, actor: str) -> IntegrationClient | None:
    """Mark the client revoked (its row stays: who registered and who revoked it); None if unknown."""
    client = await get_active(session, client_id)
    if client is None:
        return None
    before = _audited(client)
    client.revoked_at = utcnow()
    client.revoked_by = actor
    session.add(client)
    await session.flush()
    await record_event(session, SCHEMA, entity=AUDIT_ENTITY, key=str(client.id), op="state", before=before,
                       after=_audited(client), districts=client.districts)
    return client


AUDIT_ENTITY = "integration_client"


def _audited(client: IntegrationClient) -> dict:
    """What the audit trail keeps of a client (services/common/audit.py): never its secret hash."""
    return {"id": str(client.id), "name": client.name, "role": client.role, "districts": list(client.districts),
            "created_by": client.created_by,
            "revoked_at": client.revoked_at.isoformat() if client.revoked_at else None,
            "revoked_by": client.revoked_by}


# --- is a client still allowed? ----------------------------------------------------------------------

class ClientStatus:
    """Whether a client may still use its tokens, cached for `SPP_CLIENT_CACHE_SECONDS`.

    The cache spares the database a query on every request of an integrator. This process forgets
    a client the moment it revokes it; other gateway replicas refuse its tokens within the TTL.
    """

    def __init__(self, engine: Callable[[], AsyncEngine], *, ttl_seconds: float,
                 clock: Callable[[], float] = time.monotonic, max_entries: int = 10_000) -> None:
        self._engine = engine
        self._ttl = ttl_seconds
        self._clock = clock
        self._max = max_entries
        self._cache: OrderedDict[UUID, tuple[bool, float]] = OrderedDict()

    async def is_active(self, client_id: UUID) -> bool:
        cached = self._cache.get(client_id)
        now = self._clock()
        if cached is not None and now < cached[1]:
            return cached[0]
        async with self._engine().connect() as conn:
            row = (await conn.execute(text(
                "select revoked_at is null as active from gateway.integration_clients where id = :id"),
                {"id": client_id})).first()
        active = bool(row is not None and row.active)
        self._remember(client_id, active, now)
        return active

    def revoked(self, client_id: UUID) -> None:
        self._remember(client_id, False, self._clock())

    def _remember(self, client_id: UUID, active: bool, now: float) -> None:
        self._cache.pop(client_id, None)
        self._cache[client_id] = (active, now + self._ttl)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
