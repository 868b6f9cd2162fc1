"""Bearer-token authentication and the district scoping rules of design.md §5.

Every process verifies the token itself (defence in depth), so reaching a service directly is no
back door. The verifier is pluggable: HS256 with `SPP_JWT_SECRET` by default, a public key for
RS256/ES256 when `SPP_JWT_PUBLIC_KEY` is set.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Protocol

import jwt
from fastapi import Depends, Request

from services.common.context import actor_var
from services.common.errors import Forbidden, Unauthorized
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
    def verify(self, token: str) -> dict[str, Any]: ...


class KeyVerifier:
    """Verifies signature and expiry with a shared secret (HS256) or a public key (RS/ES)."""

    def __init__(self, key: str, algorithm: str) -> None:
        self._key = key
        self._algorithms = [algorithm]

    def verify(self, token: str) -> dict[str, Any]:
        return jwt.decode(token, self._key, algorithms=self._algorithms,
                          options={"require": ["sub", "exp", "role"]})


def verifier_from_settings(settings: Settings) -> TokenVerifier:
    if settings.jwt_public_key:
        return KeyVerifier(settings.jwt_public_key, settings.jwt_algorithm)
    return KeyVerifier(settings.jwt_secret, "HS256")


def mint_token(secret: str, *, sub: str, role: str, districts: Iterable[str] = (),
               schools: Iterable[str] = (), ttl_seconds: int = 3600, algorithm: str = "HS256") -> str:
    now = int(time.time())
    claims = {"sub": sub, "role": str(role), "districts": sorted(districts), "schools": sorted(schools),
              "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(claims, secret, algorithm=algorithm)


def mint_with(settings: Settings, *, sub: str, role: str, districts: Iterable[str] = (),
              schools: Iterable[str] = (), ttl_seconds: int = 3600) -> str:
    """A token signed the way this deployment's verifiers expect (shared secret or private key)."""
    signing = settings.signing_key()
    if signing is None:
        raise RuntimeError("tokens are verified with SPP_JWT_PUBLIC_KEY: set SPP_JWT_PRIVATE_KEY to mint them")
    key, algorithm = signing
    return mint_token(key, sub=sub, role=role, districts=districts, schools=schools, ttl_seconds=ttl_seconds,
                      algorithm=algorithm)


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
    return principal


CurrentUser = Annotated[Principal, Depends(get_principal)]
