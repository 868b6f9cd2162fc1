"""Idempotency-Key on POST: a retried request gets the stored response instead of a second effect.

Keys belong to the caller (token subject) and live 24 h. The first request claims its key with an
INSERT … ON CONFLICT DO NOTHING, so of concurrent replays exactly one reaches the service and the
others wait for its stored answer. The same key with another method, path or body is 422. Answers
that say nothing happened (5xx, 503 from an unavailable upstream) are not stored: the key is
released and a retry runs again.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.common.errors import Conflict, Unprocessable

STORED_HEADERS = ("content-type", "location", "etag")


@dataclass
class StoredResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class IdempotencyStore:
    def __init__(self, session_factory: async_sessionmaker, *, ttl: timedelta, wait_seconds: float) -> None:
        self._sessions = session_factory
        self._ttl = ttl
        self._wait = wait_seconds

    async def claim(self, subject: str, key: str, print_: str) -> StoredResponse | None:
        """None: this request owns the key and must run. A response: replay it."""
        if not 1 <= len(key) <= 255:
            raise Unprocessable("Idempotency-Key must be 1 to 255 characters", slug="validation",
                                extra={"errors": [{"field": "header.Idempotency-Key", "message": "length",
                                                   "type": "value_error"}]})
        deadline = time.monotonic() + self._wait
        while True:
            async with self._sessions() as session:
                # An expired key is forgotten first, so it can be claimed again.
                await session.execute(text(
                    "DELETE FROM gateway.idempotency_keys WHERE subject = :s AND key = :k "
                    "AND created_at < now() - make_interval(secs => :ttl)"),
                    {"s": subject, "k": key, "ttl": self._ttl.total_seconds()})
                claimed = (await session.execute(text(
                    "INSERT INTO gateway.idempotency_keys (subject, key, fingerprint) VALUES (:s, :k, :f) "
                    "ON CONFLICT (subject, key) DO NOTHING RETURNING 1"),
                    {"s": subject, "k": key, "f": print_})).first()
                row = None if claimed else (await session.execute(text(
                    "SELECT fingerprint, status, headers, body FROM gateway.idempotency_keys "
                    "WHERE subject = :s AND key = :k"), {"s": subject, "k": key})).mappings().first()
                await session.commit()
            if claimed:
                return None
            if row is None:
                continue  # released between our insert and select: try to claim again
            if row["fingerprint"] != print_:
                raise Unprocessable("this Idempotency-Key was used for a different request",
                                    slug="idempotency-key-reused")
            if row["status"] is not None:
                return StoredResponse(row["status"], dict(row["headers"] or {}), bytes(row["body"] or b""))
            if time.monotonic() > deadline:
                raise Conflict("a request with this Idempotency-Key is still in progress; retry later",
                               slug="idempotency-key-in-flight", headers={"Retry-After": "1"})
            await asyncio.sleep(0.05)

    async def complete(self, subject: str, key: str, response: StoredResponse) -> None:
        async with self._sessions() as session:
            await session.execute(text(
                "UPDATE gateway.idempotency_keys SET status = :st, headers = CAST(:h AS jsonb), body = :b, "
                "completed_at = now() WHERE subject = :s AND key = :k"),
                {"st": response.status, "h": _json(response.headers), "b": response.body, "s": subject, "k": key})
            await session.commit()

    async def release(self, subject: str, key: str) -> None:
        async with self._sessions() as session:
            await session.execute(text("DELETE FROM gateway.idempotency_keys WHERE subject = :s AND key = :k"),
                                  {"s": subject, "k": key})
            await session.commit()


def _json(headers: dict[str, str]) -> str:
    import json

    return json.dumps(headers, ensure_ascii=False)
