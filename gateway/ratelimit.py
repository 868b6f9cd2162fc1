"""A per-token request budget at the gateway: 429 with Retry-After once a caller exceeds it.

A token bucket per caller (the bearer token, or the client address without one), refilled
continuously at `SPP_RATE_LIMIT_PER_MINUTE`. Held in process memory: with several gateway
replicas each enforces its own share.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import OrderedDict

from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.context import request_id_var
from services.common.errors import PROBLEM_JSON

EXEMPT = ("/livez", "/readyz", "/metrics")


class TokenBuckets:
    def __init__(self, per_minute: int, *, clock=time.monotonic, max_callers: int = 100_000) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._max = max_callers

    def take(self, caller: str) -> float:
        """0 when allowed, else the seconds until one request is allowed again."""
        now = self._clock()
        tokens, last = self._buckets.pop(caller, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self._buckets[caller] = (tokens, now)
        if len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        return wait


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, per_minute: int) -> None:
        self.app = app
        self.buckets = TokenBuckets(per_minute) if per_minute > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.buckets is None or scope["type"] != "http" or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        credential = headers.get(b"authorization") or (scope.get("client") or ("?",))[0].encode()
        caller = hashlib.sha256(credential).hexdigest()
        wait = self.buckets.take(caller)
        if wait == 0:
            await self.app(scope, receive, send)
            return
        retry_after = str(max(1, math.ceil(wait)))
        body = json.dumps({"type": "urn:spp:problem:rate-limited", "title": "Too many requests", "status": 429,
                           "detail": f"rate limit of {int(self.buckets.capacity)} requests a minute exceeded",
                           "request_id": request_id_var.get()}).encode()
        await send({"type": "http.response.start", "status": 429,
                    "headers": [(b"content-type", PROBLEM_JSON.encode()), (b"retry-after", retry_after.encode()),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
