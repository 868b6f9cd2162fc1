"""Tokens for integrators and apps: the client registry's API and the OAuth2 token endpoint.

- `POST/GET/DELETE /api/v1/integration-clients` — a city administrator registers a client (a
  government system or an app) with a role (`integrator` or `viewer`) and districts, and gets its
  secret once.
- `POST /api/v1/oauth/token` — RFC 6749 §4.4 client credentials, authenticated by
  `client_secret_basic` (RFC 6749 §2.3.1: id and secret form-urlencoded, then HTTP Basic) or
  `client_secret_post`. Short-lived tokens (`SPP_OAUTH_TOKEN_TTL_SECONDS`) carry the client's role
  and districts, `sub = client:<id>` and `cid = <id>`. Errors are RFC 6749 §5.2 (`error`,
  `error_description`) inside an RFC 9457 problem body.
- `ClientCheckingVerifier` — the gateway's token verifier refuses tokens of a deleted client.
  The services verify tokens too but hold no registry: reached directly, they accept such a token
  until it expires (at most `SPP_OAUTH_TOKEN_TTL_SECONDS`, 15 minutes by default).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from typing import Annotated, Any
from urllib.parse import parse_qsl, unquote_plus

import jwt
from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from gateway import clients_registry as registry
from gateway.clients import PartnershipClient
from gateway.clients_registry import (
    ClientStatus,
    IntegrationClientCreate,
    IntegrationClientCreated,
    IntegrationClientRead,
)
from services.common.auth import CurrentUser, TokenVerifier, mint_with
from services.common.db import SessionDep
from services.common.errors import (
    DomainError,
    NotFound,
    Unauthorized,
    Unprocessable,
    UpstreamUnavailable,
    problem_responses,
)
from services.common.paging import Page, PageDep, page_of

router = APIRouter(prefix="/api/v1", tags=["integration clients"])

FORM = "application/x-www-form-urlencoded"
GRANT_TYPE = "client_credentials"
MAX_SECRET_LENGTH = 256
ClientIdPath = Annotated[uuid.UUID, Path(description="The client's `client_id`")]


# --- the registry -----------------------------------------------------------------------------------

@router.post("/integration-clients", status_code=201, response_model=IntegrationClientCreated,
             responses=problem_responses(403, 503),
             summary="Register an integration client (city administrators); its secret is shown once")
async def register_client(data: IntegrationClientCreate, request: Request, session: SessionDep,
                          actor: CurrentUser, response: Response) -> IntegrationClientCreated:
    actor.require_city_admin()
    await _require_districts_exist(request, sorted(set(data.districts)))
    client, secret = await registry.create(session, data=data, actor=actor.sub)
    response.headers["Location"] = f"/api/v1/integration-clients/{client.id}"
    response.headers["Cache-Control"] = "no-store"
    return IntegrationClientCreated(**IntegrationClientRead.of(client).model_dump(), client_secret=secret)


async def _require_districts_exist(request: Request, codes: list[str]) -> None:
    """design.md §5: an unknown reference is 422. Partnership owns the districts."""
    partnership = PartnershipClient.of(request)
    found = await asyncio.gather(*(partnership.district(code) for code in codes))
    unknown = [code for code, district in zip(codes, found) if district is None]
    if unknown:
        raise Unprocessable(f"unknown district {', '.join(unknown)}", slug="unknown-reference", extra={
            "errors": [{"field": "body.districts", "message": f"unknown district {code}", "type": "unknown"}
                       for code in unknown]})


@router.get("/integration-clients", response_model=Page[IntegrationClientRead], responses=problem_responses(403),
            summary="Registered integration clients, without their secrets (city administrators)")
async def list_clients(session: SessionDep, actor: CurrentUser, page: PageDep) -> Page[IntegrationClientRead]:
    actor.require_city_admin()
    rows = await registry.list_active(session, page=page)
    listed = page_of(rows, page, key=lambda c: (c.created_at, c.id))
    return Page(items=[IntegrationClientRead.of(c) for c in listed.items], next_cursor=listed.next_cursor)


@router.get("/integration-clients/{client_id}", response_model=IntegrationClientRead,
            responses=problem_responses(403, 404), summary="One integration client, without its secret")
async def get_client(client_id: ClientIdPath, session: SessionDep, actor: CurrentUser) -> IntegrationClientRead:
    actor.require_city_admin()
    client = await registry.get_active(session, client_id)
    if client is None:
        raise NotFound(f"no integration client {client_id}", slug="not-found")
    return IntegrationClientRead.of(client)


@router.delete("/integration-clients/{client_id}", response_model=IntegrationClientRead,
               responses=problem_responses(403, 404),
               summary="Delete an integration client: its tokens stop working at once",
               description="Answers the client as it now is (`revoked_at` set). The gateway refuses its "
                           "tokens from now on (other gateway replicas within `SPP_CLIENT_CACHE_SECONDS`).")
async def delete_client(client_id: ClientIdPath, request: Request, session: SessionDep,
                        actor: CurrentUser) -> IntegrationClientRead:
    actor.require_city_admin()
    client = await registry.revoke(session, client_id=client_id, actor=actor.sub)
    if client is None:
        raise NotFound(f"no integration client {client_id}", slug="not-found")
    request.app.state.client_status.revoked(client_id)
    return IntegrationClientRead.of(client)


# --- the token endpoint -----------------------------------------------------------------------------

class TokenResponse(BaseModel):
    """RFC 6749 §5.1."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjbGllbnQ6Li4uIn0.c2ln",
         "token_type": "Bearer", "expires_in": 900}]})

    access_token: str
    token_type: str = "Bearer"
    expires_in: int


class OAuthError(DomainError):
    """RFC 6749 §5.2; rendered as a problem with the OAuth `error` fields added."""

    status, title = 400, "OAuth token request refused"

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        headers = {"WWW-Authenticate": 'Basic realm="spp", charset="UTF-8"'} if status == 401 else {}
        super().__init__(description, slug=f"oauth-{error.replace('_', '-')}",
                         extra={"error": error, "error_description": description}, headers=headers)
        self.status = status


def _invalid_client(description: str = "client authentication failed") -> OAuthError:
    return OAuthError("invalid_client", description, status=401)


OAUTH_ERRORS = {
    400: {"description": "RFC 6749 §5.2 `invalid_request` or `unsupported_grant_type`"},
    401: {"description": "RFC 6749 §5.2 `invalid_client` (with `WWW-Authenticate: Basic`)"},
}
TOKEN_FORM = {"security": [], "requestBody": {"required": True, "content": {FORM: {"schema": {
    "type": "object", "required": ["grant_type"],
    "properties": {"grant_type": {"type": "string", "enum": [GRANT_TYPE]},
                   "client_id": {"type": "string", "description": "client_secret_post only"},
                   "client_secret": {"type": "string", "description": "client_secret_post only"},
                   "scope": {"type": "string", "description": "ignored: a client's scope is its registration"}}},
    "example": {"grant_type": "client_credentials", "client_id": "6f1c2a9e-3b7d-4c51-9a8e-2d4f6b8c0e1a",
                "client_secret": "q3Jx0rV5mC1kzq8b0e9rXk2h3uYtL7wPz4sNnA6dE1o"}}}}}


def _form(request: Request, body: bytes) -> dict[str, str]:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != FORM:
        raise OAuthError("invalid_request", f"the body must be {FORM}")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the body is not a valid form") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:  # RFC 6749 §3.2: parameters MUST NOT be included more than once
            raise OAuthError("invalid_request", f"the parameter {name} is repeated")
        form[name] = value
    return form


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """(id, secret) from HTTP Basic; None when no Authorization header is sent."""
    if not (authorization or "").strip():
        return None
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise _invalid_client("use HTTP Basic or client_secret_post to authenticate the client")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _invalid_client("the Basic credentials are not base64 of 'id:secret'") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise _invalid_client("the Basic credentials are not base64 of 'id:secret'")
    # RFC 6749 §2.3.1: both are form-urlencoded before they are joined with ':'.
    return unquote_plus(client_id), unquote_plus(secret)


def _credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    basic = _basic_credentials(request.headers.get("authorization"))
    if basic is not None:
        if "client_secret" in form or form.get("client_id", basic[0]) != basic[0]:
            # RFC 6749 §2.3: one authentication method per request.
            raise OAuthError("invalid_request", "authenticate the client once: HTTP Basic or the form, not both")
        return basic
    if "client_id" in form and "client_secret" in form:
        return form["client_id"], form["client_secret"]
    raise _invalid_client("no client authentication: send HTTP Basic or client_id and client_secret")


@router.post("/oauth/token", response_model=TokenResponse, responses=OAUTH_ERRORS, openapi_extra=TOKEN_FORM,
             tags=["oauth"], summary="A bearer token for a registered client (OAuth2 client credentials)")
async def token(request: Request, session: SessionDep) -> JSONResponse:
    form = _form(request, await request.body())
    grant_type = form.get("grant_type")
    if not grant_type:
        raise OAuthError("invalid_request", "grant_type is required")
    client_id, secret = _credentials(request, form)
    if len(secret) > MAX_SECRET_LENGTH:  # ours are 43 characters; do not hash megabytes
        raise _invalid_client()
    try:
        client = await registry.get_active(session, uuid.UUID(client_id))
    except ValueError:
        client = None
    matches = await registry.check_secret(secret, client.secret_hash if client else None)
    if client is None or not matches:
        raise _invalid_client()
    if grant_type != GRANT_TYPE:
        raise OAuthError("unsupported_grant_type", f"only {GRANT_TYPE} is supported")
    settings = request.app.state.settings
    if settings.signing_key() is None:
        raise UpstreamUnavailable("this gateway holds no signing key (set SPP_JWT_PRIVATE_KEY)",
                                  slug="token-signing-unavailable")
    ttl = settings.oauth_token_ttl_seconds
    access_token = mint_with(settings, sub=f"client:{client.id}", role=client.role, districts=client.districts,
                             ttl_seconds=ttl, extra={"cid": str(client.id), "jti": uuid.uuid4().hex})
    # RFC 6749 §5.1: a token answer is never cached.
    return JSONResponse(TokenResponse(access_token=access_token, expires_in=ttl).model_dump(),
                        headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


# --- refusing a deleted client's tokens ---------------------------------------------------------------

class ClientCheckingVerifier:
    """The gateway's verifier: the usual checks, and a client token only while its client exists.

    The registry is asked in `prepare` (async, before the route), and only about tokens whose
    signature already verified, so a forged token never costs a database query.
    """

    def __init__(self, inner: TokenVerifier, clients: ClientStatus) -> None:
        self.inner = inner
        self.clients = clients

    def verify(self, token: str) -> dict[str, Any]:
        return self.inner.verify(token)

    async def prepare(self, token: str) -> None:
        prepare = getattr(self.inner, "prepare", None)
        if prepare is not None:
            await prepare(token)
        try:
            claims = self.inner.verify(token)
        except jwt.PyJWTError:
            return  # the route's authentication says what is wrong with it
        cid = claims.get("cid")
        if cid is None or claims.get("sub") != f"client:{cid}":
            return
        try:
            active = await self.clients.is_active(uuid.UUID(str(cid)))
        except ValueError:
            active = False
        if not active:
            raise Unauthorized("the integration client of this token was deleted", slug="revoked-client",
                               headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def install_client_registry(app: Any) -> None:
    """Wrap the app's verifier; the registry is read through the engine the lifespan makes."""
    app.state.client_status = ClientStatus(lambda: app.state.engine,
                                           ttl_seconds=app.state.settings.client_cache_seconds)
    app.state.verifier = ClientCheckingVerifier(app.state.verifier, app.state.client_status)
