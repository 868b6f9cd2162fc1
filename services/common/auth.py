"""Bearer-token authentication and the district scoping rules of design.md §5.

Every process verifies the token itself (defence in depth), so reaching a service directly is no
back door. The verifier is pluggable: HS256 with `SPP_JWT_SECRET` by default, a public key for
RS256/ES256 when `SPP_JWT_PUBLIC_KEY` is set, and tokens that name a key id (`kid`) are checked
against an identity provider's JWKS when `SPP_JWT_JWKS_URL` is set (services/common/jwks.py).
Every token is held to the same policy: 60 s clock leeway, `aud`/`iss` when configured, and a
maximum lifetime (`exp - iat`, `SPP_JWT_MAX_LIFETIME_SECONDS`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Protocol

import jwt
from fastapi import Depends, Request

from services.common.context import actor_var, role_var
from services.common.errors import Forbidden, Unauthorized
from services.common.jwks import JWKSKeys
from services.common.settings import Settings


class Role(StrEnum):
    city_admin = "city_admin"
    district_admin = "district_admin"
    school_admin = "school_admin"
    viewer = "viewer"
    integrator = "integrator"


CITY_WIDE_READERS = {Role.city_admin, Role.viewer, Role.integrator}


@dataclass(frozen=True)
class Principal:
    """Who is calling and where they may act."""

    sub: str
    role: Role
    districts: frozenset[str] = field(default_factory=frozenset)
    schools: frozenset[str] = field(default_factory=frozenset)
    token: str = ""

    @property
    def city_wide(self) -> bool:
        # design.md §5: `districts` is empty for city-wide roles.
        return self.role == Role.city_admin or (self.role in CITY_WIDE_READERS and not self.districts)

    def can_read_district(self, district_code: str | None) -> bool:
        return self.city_wide or (district_code is not None and district_code in self.districts)

    def can_write_district(self, district_code: str | None) -> bool:
        if self.role == Role.city_admin:
            return True
        return self.role == Role.district_admin and district_code in self.districts

    def readable_districts(self) -> frozenset[str] | None:
        """None means every district."""
        return None if self.city_wide else self.districts

    def list_scope(self, district_code: str | None) -> frozenset[str] | None:
        """The districts a list may show (None: every district). Every list of every service
        scopes this way: an explicit `district_code` filter outside them is 403, not an empty page."""
        if district_code is not None:
            self.require_read_in(district_code)
        return self.readable_districts()

    def require_city_admin(self) -> None:
        if self.role != Role.city_admin:
            raise Forbidden("only a city administrator may do this", slug="role")

    def require_writer(self) -> None:
        if self.role not in (Role.city_admin, Role.district_admin):
            raise Forbidden(f"role {self.role} may not change this resource", slug="role")

    def require_write_in(self, *district_codes: str | None) -> None:
        """A district admin may write when any of the named districts is theirs."""
        self.require_writer()
        if not any(self.can_write_district(code) for code in district_codes):
            raise Forbidden("outside your districts", slug="district-scope")

    def require_figures_scope(self, district_code: str | None) -> None:
        """Figures for one district need read access there; for every district, a city-wide role."""
        if district_code is None:
            if not self.city_wide:
                raise Forbidden("figures for every district need a city-wide role", slug="district-scope")
        else:
            self.require_read_in(district_code)

    def require_read_in(self, *district_codes: str | None) -> None:
        if not any(self.can_read_district(code) for code in district_codes):
            raise Forbidden("outside your districts", slug="district-scope")


class TokenVerifier(Protocol):
    """`verify` checks a token without I/O. A verifier may also have `async prepare(token)`, awaited
    before the route runs (see `prepare_token`): it fetches what `verify` will need (JWKS keys) or
    refuses a token early (the gateway's revoked integration clients)."""

    def verify(self, token: str) -> dict[str, Any]: ...


LEEWAY_SECONDS = 60  # clock skew allowed on exp, nbf and iat


@dataclass(frozen=True)
class TokenPolicy:
    """What every accepted token must satisfy besides its signature."""

    audience: str | None = None
    issuer: str | None = None
    max_lifetime_seconds: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenPolicy:
        return cls(settings.jwt_audience, settings.jwt_issuer, settings.jwt_max_lifetime_seconds)

    def decode(self, token: str, key: Any, algorithms: list[str]) -> dict[str, Any]:
        claims = jwt.decode(token, key, algorithms=algorithms, audience=self.audience, issuer=self.issuer,
                            leeway=LEEWAY_SECONDS,
                            options={"require": ["sub", "exp", "role"], "verify_aud": self.audience is not None})
        if self.max_lifetime_seconds is not None:
            # A token without `iat` is measured from now: what is left of it may not exceed the bound.
            issued = claims.get("iat")
            start = issued if isinstance(issued, (int, float)) and not isinstance(issued, bool) else time.time()
            if claims["exp"] - start > self.max_lifetime_seconds:
                raise jwt.InvalidTokenError(f"the token lives longer than {self.max_lifetime_seconds} s")
        return claims


class KeyVerifier:
    """Verifies signature and expiry with a shared secret (HS256) or a public key (RS/ES)."""

    def __init__(self, key: str, algorithm: str, policy: TokenPolicy | None = None) -> None:
        self._key = key
        self._algorithms = [algorithm]
        self._policy = policy or TokenPolicy()

    def verify(self, token: str) -> dict[str, Any]:
        return self._policy.decode(token, self._key, self._algorithms)


class JWKSVerifier:
    """Tokens that name a key id are checked with that key of the provider's JWKS, with the
    algorithm the key is for (never the one the token asks for); others with this deployment's key."""

    def __init__(self, local: KeyVerifier, keys: JWKSKeys, policy: TokenPolicy) -> None:
        self.local = local
        self.keys = keys
        self._policy = policy

    @staticmethod
    def _kid(token: str) -> str | None:
        kid = jwt.get_unverified_header(token).get("kid")
        return kid if isinstance(kid, str) else None

    async def prepare(self, token: str) -> None:
        try:
            kid = self._kid(token)
        except jwt.PyJWTError:
            return  # `verify` says what is wrong with it
        if kid is not None:
            await self.keys.ensure(kid)

    def verify(self, token: str) -> dict[str, Any]:
        kid = self._kid(token)
        if kid is None:
            return self.local.verify(token)
        key = self.keys.get(kid)
        if key is None:
            raise jwt.InvalidTokenError(f"no signing key {kid!r} in the identity provider's JWKS")
        return self._policy.decode(token, key.key, [key.algorithm_name])


def verifier_from_settings(settings: Settings) -> TokenVerifier:
    policy = TokenPolicy.from_settings(settings)
    if settings.jwt_public_key:
        local = KeyVerifier(settings.jwt_public_key, settings.jwt_algorithm, policy)
    else:
        local = KeyVerifier(settings.jwt_secret, "HS256", policy)
    if settings.jwt_jwks_url:
        keys = JWKSKeys(settings.jwt_jwks_url, cache_seconds=settings.jwt_jwks_cache_seconds,
                        timeout=settings.upstream_timeout)
        return JWKSVerifier(local, keys, policy)
    return local


def bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


async def prepare_token(request: Request) -> None:
    """App-wide dependency: run the verifier's async `prepare` step (if any) on the bearer token."""
    prepare = getattr(request.app.state.verifier, "prepare", None)
    if prepare is not None:
        token = bearer_token(request.headers.get("authorization"))
        if token is not None:
            await prepare(token)


def mint_token(secret: str, *, sub: str, role: str, districts: Iterable[str] = (),
               schools: Iterable[str] = (), ttl_seconds: int = 3600, algorithm: str = "HS256",
               extra: dict[str, Any] | None = None) -> str:
    now = int(time.time())
    claims = {"sub": sub, "role": str(role), "districts": sorted(districts), "schools": sorted(schools),
              "iat": now, "exp": now + ttl_seconds, **(extra or {})}
    return jwt.encode(claims, secret, algorithm=algorithm)


def mint_with(settings: Settings, *, sub: str, role: str, districts: Iterable[str] = (),
              schools: Iterable[str] = (), ttl_seconds: int = 3600, extra: dict[str, Any] | None = None) -> str:
    """A token signed the way this deployment's verifiers expect (shared secret or private key),
    carrying the `iss`/`aud` they require when those are configured."""
    signing = settings.signing_key()
    if signing is None:
        raise RuntimeError("tokens are verified with SPP_JWT_PUBLIC_KEY: set SPP_JWT_PRIVATE_KEY to mint them")
    key, algorithm = signing
    required = {name: value for name, value in (("iss", settings.jwt_issuer), ("aud", settings.jwt_audience))
                if value}
    return mint_token(key, sub=sub, role=role, districts=districts, schools=schools, ttl_seconds=ttl_seconds,
                      algorithm=algorithm, extra={**required, **(extra or {})})


def principal_from_claims(claims: dict[str, Any], token: str) -> Principal:
    try:
        role = Role(claims["role"])
    except ValueError as exc:
        raise Unauthorized(f"unknown role {claims.get('role')!r}", slug="invalid-token") from exc
    districts = claims.get("districts") or []
    schools = claims.get("schools") or []
    if not isinstance(districts, list) or not isinstance(schools, list):
        raise Unauthorized("districts and schools claims must be lists", slug="invalid-token")
    return Principal(sub=str(claims["sub"]), role=role, districts=frozenset(map(str, districts)),
                     schools=frozenset(map(str, schools)), token=token)


_BEARER = {"WWW-Authenticate": "Bearer"}


def authenticate(authorization: str | None, verifier: TokenVerifier) -> Principal:
    if not authorization:
        raise Unauthorized("a bearer token is required", slug="missing-token", headers=_BEARER)
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'", slug="missing-token",
                           headers=_BEARER)
    token = token.strip()
    try:
        claims = verifier.verify(token)
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("the token has expired", slug="expired-token", headers=_BEARER) from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"the token is not valid: {exc}", slug="invalid-token", headers=_BEARER) from exc
    return principal_from_claims(claims, token)


async def get_principal(request: Request) -> Principal:
    principal = authenticate(request.headers.get("authorization"), request.app.state.verifier)
    # Who writes: stamped on the change-feed rows of this request (services/common/outbox.py).
    actor_var.set(principal.sub)
    role_var.set(str(principal.role))  # and in what role: the audit trail (services/common/audit.py)
    return principal


CurrentUser = Annotated[Principal, Depends(get_principal)]
