"""A per-caller request budget at the gateway: 429 with Retry-After once a caller exceeds it.

`SPP_RATE_LIMIT_PER_MINUTE` requests in any 60 seconds per caller (the bearer token, or the client
address without one), counted by the `limits` library in the storage `SPP_RATE_LIMIT_STORAGE`
names. `memory://` (the default) counts in this process, so each of N gateway replicas allows the
whole budget; `redis://redis:6379/0` (also valkey://, redis+sentinel://, redis+cluster://,
memcached://) counts where every replica sees it, so the replicas together allow one budget.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
from urllib.parse import urlsplit
from weakref import WeakKeyDictionary

from limits import RateLimitItemPerMinute
from limits.aio.storage import MovingWindowSupport, Storage
from limits.aio.strategies import MovingWindowRateLimiter, RateLimiter, SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from limits.storage import SCHEMES, storage_from_string
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.context import request_id_var
from services.common.errors import PROBLEM_JSON
from services.common.messages import language_of_scope, translate, translate_title

EXEMPT = ("/livez", "/readyz", "/metrics")
NAMESPACE = "spp-gateway"
_log = logging.getLogger("spp.ratelimit")
_storages: WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Storage]] = WeakKeyDictionary()


def async_uri(uri: str) -> str:
    """`redis://…` as the async storage `async+redis://…`: the gateway never blocks its loop."""
    return uri if uri.startswith("async+") else f"async+{uri}"


def shared_storage(uri: str) -> Storage:
    """One storage per URI in this process: every gateway app pointed at the same URI counts against
    one budget, as replicas do against one Redis. Per event loop, since async clients bind to theirs."""
    per_loop = _storages.setdefault(asyncio.get_running_loop(), {})
    if uri not in per_loop:
        per_loop[uri] = storage_from_string(async_uri(uri), wrap_exceptions=True)
    return per_loop[uri]


def limiter_for(storage: Storage) -> RateLimiter:
    # A moving window is exact (N in any 60 s); memcached offers only the sliding-window counter.
    if isinstance(storage, MovingWindowSupport):
        return MovingWindowRateLimiter(storage)
    return SlidingWindowCounterRateLimiter(storage)


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, per_minute: int, storage: str = "memory://") -> None:
        scheme = urlsplit(async_uri(storage)).scheme
        if scheme not in SCHEMES:
            # At start-up, not at the first request: a typo must not leave the gateway unlimited.
            raise ValueError(f"SPP_RATE_LIMIT_STORAGE: unknown storage scheme {scheme!r}")
        self.app = app
        self.per_minute = per_minute
        self.item = RateLimitItemPerMinute(per_minute) if per_minute > 0 else None
        self.storage = storage

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.item is None or scope["type"] != "http" or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        credential = headers.get(b"authorization") or (scope.get("client") or ("?",))[0].encode()
        caller = hashlib.sha256(credential).hexdigest()
        limiter = limiter_for(shared_storage(self.storage))
        try:
            if await limiter.hit(self.item, NAMESPACE, caller):
                await self.app(scope, receive, send)
                return
            stats = await limiter.get_window_stats(self.item, NAMESPACE, caller)
        except StorageError as exc:
            # The limit protects the services; an unreachable counter store must not take them off
            # the air, so the request goes through and the operator sees why in the log.
            _log.warning("rate limit storage unreachable; request not limited", extra={"error": str(exc.storage_error)})
            await self.app(scope, receive, send)
            return
        retry_after = str(max(1, math.ceil(stats.reset_time - time.time())))
        # Outside the request middleware: the language comes from the request's own headers.
        language = language_of_scope(scope)
        detail = translate(f"rate limit of {self.per_minute} requests a minute exceeded", language)
        title = translate_title("Too many requests", language)
        body = json.dumps({"type": "urn:spp:problem:rate-limited", "title": title, "status": 429, "detail": detail,
                           "request_id": request_id_var.get()}, ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": 429,
                    "headers": [(b"content-type", PROBLEM_JSON.encode()), (b"retry-after", retry_after.encode()),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
