"""Domain errors and their RFC 9457 problem+json rendering.

Services raise these (never `HTTPException`); one set of handlers turns them, validation errors,
unknown routes, database constraint violations and unexpected failures into problem details.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.common.context import request_id_var
from services.common.field_errors import field_label, field_message
from services.common.messages import current_language, render, translate, translate_extra, translate_title

PROBLEM_JSON = "application/problem+json"
_log = logging.getLogger("spp.errors")


def problem_type(slug: str) -> str:
    return f"urn:spp:problem:{slug}"


class DomainError(Exception):
    """An error the caller can act on; `slug` names the rule so clients can branch on it.

    `detail` is English; it is shown in the caller's language when rendered (the catalogue of
    services/common/messages.py recognises it). New code may name the message instead: `key` and
    `params` (then `detail` may be left empty and is the English rendering)."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str = "", *, slug: str | None = None, title: str | None = None,
                 extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                 key: str | None = None, params: dict[str, Any] | None = None) -> None:
        if key is not None and not detail:
            detail = render(key, "en", **(params or {}))
        super().__init__(detail)
        self.detail = detail
        self.key, self.params = key, params or {}
        if slug:
            self.slug = slug
        if title:
            self.title = title
        self.extra = extra or {}
        self.headers = headers or {}


class Unauthorized(DomainError):
    status, slug, title = 401, "unauthorized", "Authentication required"


class Forbidden(DomainError):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(DomainError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(DomainError):
    status, slug, title = 409, "conflict", "Conflicts with a rule"


class PreconditionFailed(DomainError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class Unprocessable(DomainError):
    """A well-formed request that names something that does not exist or cannot be used."""

    status, slug, title = 422, "unprocessable", "Unprocessable request"


class UpstreamUnavailable(DomainError):
    status, slug, title = 503, "upstream-unavailable", "A service this request needs is unavailable"


RETRY_AFTER_SECONDS = 5  # about what a supervised PostgreSQL needs to come back after a crash


class DatabaseUnavailable(DomainError):
    """PostgreSQL cannot be reached (down, restarting, out of connections, pool exhausted): the
    request did nothing, and the same request may succeed in a few seconds."""

    status, slug, title = 503, "database-unavailable", "Database unavailable"

    def __init__(self, detail: str = "The database cannot be reached right now; retry shortly.") -> None:
        super().__init__(detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


# SQLSTATEs of a server that is unreachable or refusing work for now: connection exceptions
# (class 08), admin/crash shutdown and "cannot connect now" (57P01-57P03), too many connections.
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")
_DRIVER_MODULES = ("asyncpg", "sqlalchemy")


def _raised_by_driver(tb: TracebackType | None) -> bool:
    """Whether a traceback passes through the database driver: an OSError from there is a failed
    connection; one from elsewhere (a file, a socket of our own) is not the database's."""
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.split(".", 1)[0] in _DRIVER_MODULES:
            return True
        tb = tb.tb_next
    return False


def _lost_connection(cause: BaseException | None) -> bool:
    if cause is None:
        return False
    if isinstance(cause, (asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
                          asyncpg.AdminShutdownError, asyncpg.CrashShutdownError,
                          asyncpg.TooManyConnectionsError, OSError)):
        return True
    if isinstance(cause, asyncpg.InterfaceError) and "connection is closed" in str(cause):
        return True
    sqlstate = str(getattr(cause, "sqlstate", None) or "")
    return bool(sqlstate) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES)


def is_database_unavailable(exc: BaseException) -> bool:
    """True when `exc` means "the database cannot be reached", as opposed to a bad statement or
    a broken rule (those keep their own answers)."""
    if isinstance(exc, PoolTimeout):  # every pooled connection busy for db_pool_timeout seconds
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        return _lost_connection(exc.orig) or _lost_connection(getattr(exc.orig, "__cause__", None))
    if isinstance(exc, OSError):  # asyncpg raises refused/absent/timed-out connects untranslated
        return _raised_by_driver(exc.__traceback__)
    return _lost_connection(exc)


# Constraint name -> (error class, slug, message). Services register the rules their
# migrations create, so a violation found by PostgreSQL reads like a domain error.
_CONSTRAINTS: dict[str, tuple[type[DomainError], str, str]] = {}


def register_constraint(name: str, error: type[DomainError], slug: str, message: str) -> None:
    _CONSTRAINTS[name] = (error, slug, message)


def error_from_integrity(exc: DBAPIError) -> DomainError:
    """Map a PostgreSQL integrity violation to the domain error registered for its constraint."""
    cause = getattr(exc.orig, "__cause__", None)
    constraint = getattr(cause, "constraint_name", None) or ""
    sqlstate = getattr(cause, "sqlstate", None) or getattr(exc.orig, "sqlstate", None)
    if constraint in _CONSTRAINTS:
        error, slug, message = _CONSTRAINTS[constraint]
        return error(message, slug=slug, extra={"constraint": constraint})
    if sqlstate == "23503":  # foreign_key_violation: a reference to something that is not there
        return Unprocessable("a referenced record does not exist", slug="unknown-reference",
                             extra={"constraint": constraint})
    if sqlstate == "23514":  # check_violation
        return Unprocessable("a value breaks a rule of the record", slug="check-violation",
                             extra={"constraint": constraint})
    return Conflict("the change conflicts with a stored record", slug="conflict",
                    extra={"constraint": constraint})


def problem_response(status: int, *, title: str, detail: str | None = None, slug: str | None = None,
                     extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    """The problem in the request's language: `title`, `detail` and the texts in `extra` are given
    in English and translated here (services/common/messages.py); type and slug never change."""
    language = current_language()
    body: dict[str, Any] = {
        "type": problem_type(slug) if slug else "about:blank",
        "title": translate_title(title, language),
        "status": status,
    }
    if detail:
        body["detail"] = translate(detail, language)
    request_id = request_id_var.get()
    if request_id:
        body["request_id"] = request_id
    if extra:
        body.update(translate_extra(extra, language))
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


async def _domain_error(_: Request, exc: DomainError) -> JSONResponse:
    detail = render(exc.key, **exc.params) if exc.key is not None else exc.detail
    return problem_response(exc.status, title=exc.title, detail=detail, slug=exc.slug,
                            extra=exc.extra, headers=exc.headers)


def validation_problem(raw_errors: list[Any]) -> JSONResponse:
    """422 naming each field and what it must be, in the request's language (not pydantic's
    "Field required"); `errors[].type` keeps pydantic's error type for programs."""
    errors = []
    for err in raw_errors:
        loc = tuple(err.get("loc", ()))
        errors.append({"field": _field_path(loc), "type": err.get("type", ""),
                       "message": field_message(err, field_label(loc, request=True))})
    separator = "；" if current_language() == "zh" else "; "
    return problem_response(422, title="Invalid request", slug="validation",
                            detail=separator.join(e["message"] for e in errors[:5]), extra={"errors": errors})


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    return validation_problem(list(exc.errors()))


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    titles = {404: "Not found", 405: "Method not allowed", 413: "Request body too large"}
    slug = {404: "not-found", 405: "method-not-allowed", 413: "body-too-large"}.get(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) else None
    return problem_response(exc.status_code, title=titles.get(exc.status_code, "HTTP error"),
                            detail=detail, slug=slug, headers=getattr(exc, "headers", None))


async def _integrity_error(_: Request, exc: IntegrityError) -> JSONResponse:
    return await _domain_error(_, error_from_integrity(exc))


def _sqlstate(exc: DBAPIError) -> str:
    cause = getattr(exc.orig, "__cause__", None)
    return str(getattr(cause, "sqlstate", None) or getattr(exc.orig, "sqlstate", None) or "")


async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
    """A lost database is 503 (see `_unreachable`). PostgreSQL's data exceptions (SQLSTATE class
    22: a NUL character in text, a number or date out of range …) are the caller's input, not our
    failure: 422, with the transaction rolled back."""
    if is_database_unavailable(exc):
        return await _unreachable(request, exc)
    if _sqlstate(exc).startswith("22"):
        return problem_response(422, title="Invalid value", slug="invalid-value",
                                detail="a value cannot be stored as given (out of range, or a NUL character in text)")
    return await _unexpected(request, exc)


async def _connection_error(request: Request, exc: Exception) -> JSONResponse:
    """OSError, the pool's timeout and raw asyncpg errors: 503 when they mean the database is out
    of reach, otherwise the unexpected failure they are."""
    if is_database_unavailable(exc):
        return await _unreachable(request, exc)
    return await _unexpected(request, exc)


async def _unreachable(request: Request, exc: Exception) -> JSONResponse:
    """Nothing was stored (the request's transaction never committed), so the caller may retry."""
    _log.warning("database unavailable: %s: %s", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
    return await _domain_error(request, DatabaseUnavailable())


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    _log.exception("unhandled error", exc_info=exc)
    return problem_response(500, title="Internal error", slug="internal",
                            detail="The request failed unexpectedly; quote the request id when reporting it.")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DBAPIError, _database_error)
    for connection_error in (OSError, PoolTimeout, asyncpg.PostgresError, asyncpg.InterfaceError):
        app.add_exception_handler(connection_error, _connection_error)
    app.add_exception_handler(Exception, _unexpected)


class FieldError(BaseModel):
    field: str
    message: str
    type: str = ""


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of this API is rendered."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


_DESCRIPTIONS = {
    401: "Missing, invalid or expired bearer token", 403: "Outside your role or districts",
    404: "No such resource", 409: "Conflicts with a domain rule (the problem names it)",
    412: "If-Match does not match the current ETag", 413: "Body too large",
    422: "Invalid input or unknown reference",
    503: "A service or the database this request needs is unavailable (Retry-After says when to retry)",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting the problem bodies an endpoint can answer."""
    return {
        status: {"model": Problem, "description": _DESCRIPTIONS.get(status, "Problem"),
                 "content": {PROBLEM_JSON: {}}}
        for status in (401, 422, *statuses)
    }
