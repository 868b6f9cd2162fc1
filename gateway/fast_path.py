"""Proxied requests go straight to the proxy, past FastAPI's routing and dependency solving.

Routing a request through the included routers to the catch-all proxy route, and solving its
dependencies, was a tenth of the gateway's CPU per proxied GET (py-spy, benchmarks/hop.py), for a
route whose only dependency is the app-wide `prepare_token`. This middleware sits innermost, inside
every middleware of the app (request ids, access log and metrics, tracing, body size limit, rate
limit, gzip, HEAD, CORS), and takes a request only when the router would have picked the proxy
route: a proxied method on `/api/v1/…` whose path no other route matches, for any method (a view's
path with a method the view does not answer still goes to the router, as does everything else).
Errors are rendered by the app's own exception handlers, as the router's exception middleware
renders them, so an answer is the same byte for byte whichever way it came.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import proxy
from services.common.auth import prepare_token

PREFIX = "/api/v1/"


class ProxyFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._others: tuple[re.Pattern[str], ...] | None = None
        self._proxy: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["method"] in proxy.METHODS and scope["path"].startswith(PREFIX)
                and self._takes(scope)):
            await self._proxy_app(scope)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _takes(self, scope: Scope) -> bool:
        others = self._others
        if others is None:
            others = self._others = other_routes(scope["app"].router.routes)
        path = scope["path"]
        return all(pattern.match(path) is None for pattern in others)

    def _proxy_app(self, scope: Scope) -> ASGIApp:
        if self._proxy is None:
            # The handlers the app's ExceptionMiddleware has: all but the 500 one, which the
            # outermost ServerErrorMiddleware keeps (Starlette's build_middleware_stack).
            handlers = {key: handler for key, handler in scope["app"].exception_handlers.items()
                        if key not in (500, Exception)}
            self._proxy = ExceptionMiddleware(_forward, handlers=handlers)
        return self._proxy


async def _forward(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    scope["spp.route"] = proxy.route_label(request.method, scope["path"][len(PREFIX):])  # labels a refusal too
    await prepare_token(request)  # the app-wide dependency every routed request runs
    response = await proxy.forward(request, scope["path"][len(PREFIX):])
    await response(scope, receive, send)


class _Unknown(Exception):
    pass


def other_routes(routes: Iterable[Any]) -> tuple[re.Pattern[str], ...]:
    """The path patterns of every route but the proxy's, through included routers. A route of a
    kind it cannot read (or an include with its own prefix) stops the fast path: everything then
    goes through the router, as before (the empty tuple would take everything, so `(ANY,)`)."""
    try:
        return tuple(_patterns(routes))
    except _Unknown:
        return (re.compile(""),)


def _patterns(routes: Iterable[Any]) -> Iterable[re.Pattern[str]]:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            if getattr(getattr(route, "include_context", None), "prefix", None) != "":
                raise _Unknown
            yield from _patterns(included.routes)
        elif getattr(route, "endpoint", None) is proxy.proxy:
            continue
        elif isinstance(getattr(route, "path_regex", None), re.Pattern):
            yield route.path_regex
        else:
            raise _Unknown
