"""Idempotency-Key on POST, decided by the service that makes the write, in the write's transaction.

Why here: the key used to live in the gateway's own table, apart from the write. When the gateway
failed after the service had committed, its record stayed "in flight" and every retry for 24 h got
409. Kept by the owning service in the same transaction as the write, a key exists exactly when its
write committed, and it holds the answer that write gave: a retry after any failure (lost
response, gateway crash, timeout) gets the committed result, never a second write, never stuck.
The gateway only forwards the header.

How: `get_session` (services/common/db.py) is a `scope="function"` dependency, and FastAPI leaves
function-scoped dependencies only after the route handler has returned its finished `Response`
(status, headers and serialized body), before the response is sent. `IdempotentRoute` wraps the
route handler, so in between it writes that response into the key's row on the request's own
session; `get_session` then commits the write and its answer together, or rolls both back. A pure
ASGI middleware could do the same, but it would open and commit the transaction itself (a second
owner beside `get_session`), verify the token again and buffer every response; the route class
keeps one owner of the transaction and reuses what the route already solves (session, caller).

The claim (`claim_key`, added to every POST of an `IdempotentRoute`), in the request's transaction:
- `INSERT … ON CONFLICT (subject, key) DO UPDATE … WHERE` the stored key has expired: a new or
  expired key comes back as ours. A concurrent duplicate blocks on the unique index until the first
  transaction ends: committed, the row holds the answer and it is replayed (`Idempotent-Replayed:
  true`); rolled back, the insert goes through and this request runs. DO UPDATE rather than DO
  NOTHING so expiry is the same statement, and the row stays locked while we read it. The wait is
  bounded (`SPP_IDEMPOTENCY_WAIT_SECONDS`): then 409 `idempotency-key-in-flight` with Retry-After.
- The same key with another method, path, query or body: 422 `idempotency-key-reused`.
- An error raised by the handler rolls back the write and the key together, so a retry runs again.
  A 5xx the handler answers itself, or a streamed body, is not stored: the key is released.
Keys belong to the token's `sub` and live `SPP_IDEMPOTENCY_TTL_HOURS` (24 h); each stored answer
also deletes a few expired rows, so the table holds about a day of keys.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.auth import CurrentUser
from services.common.db import SessionDep
from services.common.errors import Conflict, Unprocessable, _sqlstate

STORED_HEADERS = ("content-type", "location", "etag")
LOCK_NOT_AVAILABLE = "55P03"


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """What makes two requests "the same": length-prefixed, so no two different requests collide."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class IdempotentReplay(Exception):
    """Raised by the claim to answer with the stored response; the (empty) transaction rolls back."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        super().__init__(status)
        self.status, self.headers, self.body = status, headers, body


async def _replay(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, IdempotentReplay)
    return Response(exc.body, status_code=exc.status, headers={**exc.headers, "Idempotent-Replayed": "true"})


def install_idempotency(app: FastAPI) -> None:
    app.add_exception_handler(IdempotentReplay, _replay)


@dataclass
class Claim:
    """A key this request holds; its row is written before the request's transaction commits."""

    session: AsyncSession
    schema: str
    subject: str
    key: str
    ttl_hours: int

    async def settle(self, response: Response) -> None:
        params = {"s": self.subject, "k": self.key}
        body = getattr(response, "body", None)
        if response.status_code >= 500 or not isinstance(body, bytes):
            # Nothing worth replaying (a failure, or a stream we cannot keep): a retry runs again.
            await self.session.execute(text(
                f"DELETE FROM {self.schema}.idempotency_keys WHERE subject = :s AND key = :k"), params)
            return
        headers = {name: response.headers[name] for name in STORED_HEADERS if name in response.headers}
        # SKIP LOCKED: pruning never waits on, nor blocks, another request's key.
        await self.session.execute(text(f"""
            WITH pruned AS (
                DELETE FROM {self.schema}.idempotency_keys WHERE ctid IN (
                    SELECT ctid FROM {self.schema}.idempotency_keys
                    WHERE created_at < now() - make_interval(hours => :ttl)
                    LIMIT 10 FOR UPDATE SKIP LOCKED))
            UPDATE {self.schema}.idempotency_keys SET status = :status, headers = CAST(:headers AS jsonb),
                   body = :body
            WHERE subject = :s AND key = :k"""),
            {**params, "ttl": self.ttl_hours, "status": response.status_code,
             "headers": json.dumps(headers, ensure_ascii=False), "body": body})


async def claim_key(
    request: Request, session: SessionDep, caller: CurrentUser,
    idempotency_key: Annotated[str | None, Header(
        alias="Idempotency-Key", min_length=1, max_length=255,
        description="Makes a retry safe: the same key and body again answers the stored result "
                    "(with `Idempotent-Replayed: true`) instead of writing twice; kept 24 h per caller")] = None,
) -> None:
    if idempotency_key is None or request.method != "POST":
        return
    settings = request.app.state.settings
    schema: str = request.app.state.process  # each service's schema is named after it
    print_ = fingerprint(request.method, request.url.path, request.scope.get("query_string", b"").decode("latin-1"),
                         await request.body())
    params = {"s": caller.sub, "k": idempotency_key}
    try:
        await session.execute(text("SELECT set_config('lock_timeout', :wait, true)"),
                              {"wait": f"{int(settings.idempotency_wait_seconds * 1000)}ms"})
        claimed = (await session.execute(text(f"""
            INSERT INTO {schema}.idempotency_keys AS stored (subject, key, fingerprint)
            VALUES (:s, :k, :f)
            ON CONFLICT (subject, key) DO UPDATE
                SET fingerprint = excluded.fingerprint, status = NULL, headers = NULL, body = NULL,
                    created_at = now()
                WHERE stored.created_at < now() - make_interval(hours => :ttl)
            RETURNING 1"""), {**params, "f": print_, "ttl": settings.idempotency_ttl_hours})).first()
        await session.execute(text("SET LOCAL lock_timeout = DEFAULT"))
    except DBAPIError as exc:
        if _sqlstate(exc) != LOCK_NOT_AVAILABLE:
            raise
        raise Conflict("a request with this Idempotency-Key is still in progress; retry later",
                       slug="idempotency-key-in-flight", headers={"Retry-After": "1"}) from None
    if claimed is not None:
        request.state.idempotency = Claim(session, schema, caller.sub, idempotency_key,
                                          settings.idempotency_ttl_hours)
        return
    stored = (await session.execute(text(
        f"SELECT fingerprint, status, headers, body FROM {schema}.idempotency_keys WHERE subject = :s AND key = :k"),
        params)).mappings().one()
    if stored["fingerprint"] != print_:
        raise Unprocessable("this Idempotency-Key was used for a different request",
                            slug="idempotency-key-reused")
    if stored["status"] is None:  # cannot be committed so; kept as a safe answer all the same
        raise Conflict("a request with this Idempotency-Key is still in progress; retry later",
                       slug="idempotency-key-in-flight", headers={"Retry-After": "1"})
    raise IdempotentReplay(stored["status"], dict(stored["headers"] or {}), bytes(stored["body"] or b""))


class IdempotentRoute(APIRoute):
    """The route class of every service router: POSTs claim their Idempotency-Key before the
    endpoint runs and store their response before the request's session commits."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        methods = {m.upper() for m in kwargs.get("methods") or ()}
        dependencies = list(kwargs.get("dependencies") or [])
        if "POST" in methods and not any(d.dependency is claim_key for d in dependencies):
            kwargs["dependencies"] = [Depends(claim_key), *dependencies]
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            response = await handler(request)
            claim: Claim | None = getattr(request.state, "idempotency", None)
            if claim is not None:
                await claim.settle(response)
            return response

        return handle
