"""Token verification checked once per token and minute instead of on every request.

Every request through the gateway has its token verified before anything is forwarded, twice over
(the verifier's `prepare` step, then the route's authentication), and PyJWT's decode was a tenth
of the gateway's CPU per proxied request; each service then verifies the same token again (defence
in depth, services/common/auth.py), and there it was a tenth of a kept figure answer's CPU. Every
process wraps its verifier in this (services/common/app.py). A token is an immutable signed string, so what a full
check accepted stays accepted for it until it expires; an entry is re-checked in full after
`max_age` all the same, so a signing key withdrawn from a JWKS stops working within a minute.
Refusals are never remembered, and revoked integration clients are still refused on every request
(gateway/oauth.py asks the registry in `prepare`, after this verifier).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from services.common.auth import TokenVerifier


class VerifiedTokens:
    """Wraps a verifier; a bounded LRU of tokens it accepted, with their claims."""

    def __init__(self, inner: TokenVerifier, *, size: int = 4096, max_age: float = 60.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.inner = inner
        self._size = size
        self._max_age = max_age
        self._clock = clock
        self._accepted: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()

    def _fresh(self, token: str) -> dict[str, Any] | None:
        entry = self._accepted.get(token)
        if entry is None:
            return None
        checked_at, claims = entry
        now = self._clock()
        # Within its exp (without the verifier's leeway: near expiry the full check decides).
        if now - checked_at < self._max_age and claims["exp"] > now:
            self._accepted.move_to_end(token)
            return claims
        del self._accepted[token]
        return None

    async def prepare(self, token: str) -> None:
        """The inner verifier's async step (fetching a JWKS key), unless the token is known."""
        prepare = getattr(self.inner, "prepare", None)
        if prepare is not None and self._fresh(token) is None:
            await prepare(token)

    def verify(self, token: str) -> dict[str, Any]:
        claims = self._fresh(token)
        if claims is None:
            claims = self.inner.verify(token)  # raises for anything it refuses
            self._accepted[token] = (self._clock(), claims)
            if len(self._accepted) > self._size:
                self._accepted.popitem(last=False)
        return claims
