"""Kept figure answers are sent before routing: the whole response, as the route sent it.

Every overview asks the services five figures; while nothing they read changed, each is a kept
answer (services/common/answer_cache.py). Served by the route, a kept answer still paid for
FastAPI's routing, the dependencies (token, session, parameters), the endpoint and the response
model: three quarters of a service's CPU per call (py-spy, docs/benchmarks.md), and that CPU is
what 16 clients of the overview queue for. This middleware sits innermost, inside the request-id,
access-log, metrics, tracing and body-limit middleware, and for a route marked `@keeps_answer`:

1. checks the caller as the route would: the same verifier (services/common/verified_tokens.py)
   and the same rule, `require_figures_scope(district_code)`. A caller it would refuse goes on to
   the route, which refuses them with its own problem answer;
2. asks the answer cache for the response kept under the path and the query string exactly as
   sent. A kept one is sent as it was: status, headers, body;
3. otherwise lets the route answer, and keeps a 200 under the stamp read in step 2, before the
   route began its own transaction. While the route computes an answer, other calls for the same
   answer wait for it and then look again (a check of their own, after the answer was kept):
   after a write, sixteen dashboards asking one figure compute it once, not sixteen times.

So a marked route's answer may depend only on the path, the query string (one that the route
refused is never kept) and the data; of the caller only through the district rule above; of
nothing else: not the date, not a header. Anything that goes wrong in steps 1–2 (a token refused,
the database unreachable) leaves the request to the route, which answers it as it always did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from starlette.datastructures import Headers, QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.answer_cache import AnswerCache
from services.common.auth import Principal, authenticate, bearer_token
from services.common.context import actor_var, fresh_var, role_var

F = TypeVar("F", bound=Callable[..., Any])
MARK = "__keeps_answer__"
SCOPE_PARAMETER = "district_code"
WAIT_FOR_OTHERS = 10.0  # seconds a call waits for another computing its answer, then computes it too
MAX_KEPT_BYTES = 4 * 1024 * 1024  # larger answers are answered by the route every time
# (and all of a process's kept answers weigh at most AnswerCache's max_bytes, 64 MiB, together)

_log = logging.getLogger("spp.kept_answers")


def keeps_answer(endpoint: F) -> F:
    """Marks a GET figure route whose answers may be kept (the rules are in the module docstring)."""
    setattr(endpoint, MARK, True)
    return endpoint


class KeptAnswers:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._paths: frozenset[str] | None = None
        self._computing: dict[tuple[str, bytes], asyncio.Event] = {}  # answers a route is computing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        paths = self._paths
        if paths is None:
            paths = self._paths = frozenset(marked_paths(scope["app"].router.routes))
        cache: AnswerCache | None = getattr(scope["app"].state, "answer_cache", None)
        if scope["path"] not in paths or cache is None:
            await self.app(scope, receive, send)
            return
        key = (scope["path"], scope["query_string"])
        fresh = fresh_var.get()
        try:
            principal = await _caller(scope)
            kept, stamp = await cache.lookup(key, fresh=fresh) if principal is not None else (None, None)
            computing = self._computing.get(key)
            if kept is None and computing is not None and not fresh:
                # The same answer is being computed: wait for it, then look again.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(WAIT_FOR_OTHERS):
                        await computing.wait()
                kept, stamp = await cache.lookup(key)
        except Exception as exc:  # the database is down, say: the route answers as it always did
            _log.warning("kept answer lookup failed", extra={"error": f"{type(exc).__name__}: {exc}"})
            principal = stamp = None
        if principal is None or stamp is None:
            await self.app(scope, receive, send)
            return
        if kept is not None:
            start, body = kept
            scope["spp.route"] = scope["path"]  # the metrics' label: these routes' paths are their templates
            actor_var.set(principal.sub)  # the access log's `sub`, as the route would have set it
            role_var.set(str(principal.role))
            await send({**start, "headers": list(start["headers"])})  # the outer middleware add theirs to it
            await send({"type": "http.response.body", "body": body})
            return

        sent: list[Message] = []

        async def keeping(message: Message) -> None:
            # As the route sent it: the outer middleware add their headers (the request id) to it.
            sent.append({**message, "headers": list(message.get("headers", []))}
                        if message["type"] == "http.response.start" else message)
            await send(message)

        mine = None if key in self._computing else self._computing.setdefault(key, asyncio.Event())
        try:
            await self.app(scope, receive, keeping)
            answer = _whole_answer(sent)
            if answer is not None:
                cache.keep(key, stamp, answer, weight=len(answer[1]))
        finally:
            if mine is not None:
                del self._computing[key]
                mine.set()


async def _caller(scope: Scope) -> Principal | None:
    """The caller, when the route would let them have this answer; None when it would refuse them."""
    verifier = scope["app"].state.verifier
    authorization = Headers(scope=scope).get("authorization")
    try:
        token = bearer_token(authorization)
        prepare = getattr(verifier, "prepare", None)
        if prepare is not None and token is not None:
            await prepare(token)  # what the app-wide `prepare_token` dependency does
        principal = authenticate(authorization, verifier)
        district_code = QueryParams(scope["query_string"]).get(SCOPE_PARAMETER)  # FastAPI's parse: last one wins
        principal.require_figures_scope(district_code)
    except Exception:  # refused: the route says why, in its own words
        return None
    return principal


def _whole_answer(sent: list[Message]) -> tuple[Message, bytes] | None:
    """A 200 sent whole (its start and every body part), as the start message and the body."""
    if not sent or sent[0]["type"] != "http.response.start" or sent[0]["status"] != 200:
        return None
    parts = [message.get("body", b"") for message in sent[1:] if message["type"] == "http.response.body"]
    if len(parts) != len(sent) - 1 or sent[-1].get("more_body", False):
        return None
    body = b"".join(parts)
    if len(body) > MAX_KEPT_BYTES:
        return None
    return {"type": "http.response.start", "status": 200, "headers": list(sent[0].get("headers", []))}, body


def marked_paths(routes: Iterable[Any]) -> Iterable[str]:
    """The paths of routes marked `@keeps_answer`, through included routers. A marked route with a
    path parameter, or under an include with its own prefix, is a mistake: refused at once."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            inner = list(marked_paths(included.routes))
            if inner and getattr(getattr(route, "include_context", None), "prefix", "") != "":
                raise RuntimeError("@keeps_answer routes must be included without a prefix")
            yield from inner
        elif getattr(getattr(route, "endpoint", None), MARK, False):
            if "{" in route.path or set(route.methods or ()) - {"GET", "HEAD"}:
                raise RuntimeError(f"@keeps_answer is for GET routes without path parameters: {route.path}")
            yield route.path
