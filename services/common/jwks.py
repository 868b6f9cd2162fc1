"""Signing keys of an outside identity provider, read from its JWKS URL (`SPP_JWT_JWKS_URL`).

Token checks are synchronous and run on every request, so they must never wait for the network:
they read the keys held here. The keys are fetched with httpx's async client, before a request is
authenticated (`ensure`, awaited by the `prepare` step of the verifier), when the set is older than
`SPP_JWT_JWKS_CACHE_SECONDS` or a token names a key id not seen yet (the provider rotated its keys).
Unknown key ids trigger at most one fetch per `min_refresh_seconds`, so tokens with made-up key ids
cannot turn the gateway into a JWKS-fetching loop. A failed refresh keeps the keys already held.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from jwt import PyJWK
from jwt.exceptions import PyJWKError

from services.common.errors import UpstreamUnavailable

_log = logging.getLogger("spp.jwks")

# Public-key algorithms only: a symmetric ("oct") key published in a JWKS would let anyone who
# can read the JWKS sign tokens.
ASYMMETRIC_KEY_TYPES = {"RSA", "EC", "OKP"}


def parse_jwks(document: Any) -> dict[str, PyJWK]:
    """Usable signing keys by `kid`; keys without a kid, for encryption, or symmetric are left out."""
    keys: dict[str, PyJWK] = {}
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("a JWKS is an object with a 'keys' list")
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        if entry.get("kty") not in ASYMMETRIC_KEY_TYPES or not isinstance(entry.get("kid"), str):
            continue
        try:
            keys[entry["kid"]] = PyJWK(entry)
        except (PyJWKError, ValueError, TypeError) as exc:
            _log.warning("jwks key %s skipped: %s", entry.get("kid"), exc)
    return keys


class JWKSKeys:
    """The provider's keys, cached; `get` is synchronous, `ensure`/`refresh` do the I/O."""

    def __init__(self, url: str, *, cache_seconds: float, min_refresh_seconds: float = 30.0,
                 timeout: float = 2.0, transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.cache_seconds = cache_seconds
        self.min_refresh_seconds = min_refresh_seconds
        self._timeout = timeout
        self._transport = transport
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    def get(self, kid: str) -> PyJWK | None:
        return self._keys.get(kid)

    def _stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self.cache_seconds

    def _may_retry(self) -> bool:
        return self._attempted_at is None or self._clock() - self._attempted_at >= self.min_refresh_seconds

    async def ensure(self, kid: str) -> None:
        """Have fresh keys and, if the provider has it, the key `kid` before a token is checked."""
        if kid in self._keys and not self._stale():
            return
        if not self._may_retry():
            return
        async with self._lock:
            # Another request may have refreshed while this one waited for the lock.
            if (kid in self._keys and not self._stale()) or not self._may_retry():
                return
            try:
                await self.refresh()
            except (httpx.HTTPError, ValueError) as exc:
                _log.warning("jwks fetch from %s failed: %s", self.url, exc)
                if kid not in self._keys:
                    raise UpstreamUnavailable("the identity provider's signing keys cannot be fetched",
                                              slug="jwks-unavailable") from exc

    async def refresh(self) -> None:
        self._attempted_at = self._clock()
        # A client per fetch: fetches are minutes apart, so a pooled connection would only go stale.
        async with httpx.AsyncClient(timeout=self._timeout, transport=self._transport) as client:
            response = await client.get(self.url, headers={"accept": "application/json"})
            response.raise_for_status()
            document = response.json()
        self.fetches += 1
        self._keys = parse_jwks(document)
        self._fetched_at = self._clock()
