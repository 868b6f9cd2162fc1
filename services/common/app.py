"""`create_service_app`: the frame every spp process shares (handlers, middleware, health, lifespan).

Engines, session factories and upstream clients are made in the lifespan, never at import, so a
test can build an app against its own database and hand it in-process transports to its peers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.middleware import Middleware
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from services.common.answer_cache import AnswerCache
from services.common.auth import Role, mint_with, prepare_token, verifier_from_settings
from services.common.db import create_engine, create_session_factory, read_only
from services.common.docs import install_docs
from services.common.errors import install_problem_handlers, problem_response
from services.common.feed_consumer import FeedConsumer, FeedSpec, start_consumers, stop_consumers
from services.common.idempotency import install_idempotency
from services.common.kept_answers import KeptAnswers
from services.common.middleware import BodySizeLimitMiddleware, Metrics, RequestContextMiddleware
from services.common.settings import Settings
from services.common.tracing import TracingMiddleware, configure_tracing, flush
from services.common.upstream import CircuitBreaker, Upstream
from services.common.verified_tokens import VerifiedTokens


class ServiceToken:
    """A short-lived city-wide read token a service presents when it checks a reference it does
    not own; re-minted before it expires."""

    def __init__(self, settings: Settings, process: str) -> None:
        self._settings = settings
        self._sub = f"service:{process}"
        self._token = ""
        self._expires = 0.0

    def __call__(self) -> str:
        now = time.time()
        if now > self._expires - 300:
            ttl = min(3600, self._settings.jwt_max_lifetime_seconds)
            self._token = mint_with(self._settings, sub=self._sub, role=Role.viewer, ttl_seconds=ttl)
            self._expires = now + ttl
        return self._token


def _health_router(process: str, uses_database: bool, report_upstreams: bool) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/livez", summary="The process is up")
    async def livez() -> dict[str, str]:
        return {"status": "ok", "process": process}

    @router.get("/readyz", summary="The process can serve: its database answers",
                responses={503: {"description": "Not ready"}})
    async def readyz(request: Request) -> Response:
        if uses_database:
            # The replica too, when the figures read one: a service that cannot answer them is not ready.
            engines = {"database": request.app.state.engine, "read database": request.app.state.read_engine}
            for name, engine in engines.items():
                if name != "database" and engine is request.app.state.engine:
                    continue
                try:
                    async with asyncio.timeout(1.5):
                        async with engine.connect() as conn:
                            await conn.execute(text("select 1"))
                except Exception as exc:  # any failure means "not ready"; the body says why
                    return problem_response(503, title="Not ready", slug="not-ready",
                                            detail=f"{name}: {type(exc).__name__}")
        checks: dict[str, Any] = {"status": "ready", "process": process}
        if uses_database:
            checks["database"] = "ok"
        upstreams: dict[str, Upstream] = getattr(request.app.state, "upstreams", {})
        if upstreams and report_upstreams:
            checks["upstreams"] = await _upstream_states(upstreams)
        consumers: list[FeedConsumer] = getattr(request.app.state, "feed_consumers", [])
        if consumers:
            # Reported, never a reason to be unready: a lagging read model still answers.
            checks["feeds"] = {consumer.spec.name: consumer.status() for consumer in consumers}
        return JSONResponse(checks)

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics(request: Request) -> Response:
        await request.app.state.metrics.sample()  # breakers, pools, job queues: read now
        return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router


async def _upstream_states(upstreams: dict[str, Upstream]) -> dict[str, str]:
    async def probe(upstream: Upstream) -> str:
        if not upstream.breaker.allow():
            return "circuit_open"
        try:
            response = await upstream.client.get("/readyz", timeout=1.0)
        except httpx.HTTPError:
            return "down"
        return "ready" if response.status_code == 200 else "not_ready"

    names = list(upstreams)
    states = await asyncio.gather(*(probe(upstreams[n]) for n in names))
    return dict(zip(names, states))


def make_upstreams(settings: Settings, process: str, names: Sequence[str], metrics: Metrics,
                   transports: dict[str, httpx.AsyncBaseTransport] | None,
                   token: Callable[[], str] | None) -> dict[str, Upstream]:
    transports = transports or {}
    return {
        name: Upstream(
            name, settings.url_of(name) if name not in transports else f"http://{name}",
            timeout=settings.upstream_timeout, connections=settings.upstream_connections,
            breaker=CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown),
            transport=transports.get(name), token=token, metrics=metrics, pool=settings.upstream_pool,
        )
        for name in names
    }


def create_service_app(*, process: str, settings: Settings, routers: Sequence[APIRouter],
                       title: str, description: str, uses_database: bool = True,
                       upstreams: Sequence[str] = (),
                       clients: Mapping[str, Callable[[Upstream], Any]] | None = None,
                       transports: dict[str, httpx.AsyncBaseTransport] | None = None,
                       extra_lifespan: Callable[[FastAPI], Awaitable[None]] | None = None,
                       feeds: Sequence[FeedSpec] = (),
                       on_shutdown: Callable[[FastAPI], Awaitable[None]] | None = None,
                       docs: bool = True, is_gateway: bool = False) -> FastAPI:
    """`is_gateway`: forwards callers' tokens (no service token) and lists upstreams in /readyz.
    `clients`: the typed client of each upstream the routes take (services/common/clients.py).
    `feeds`: local read models kept from producers' change feeds by background consumers
    (services/common/feed_consumer.py), started after `extra_lifespan` and stopped first."""
    metrics = Metrics(process)
    configure_tracing(process)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        token = None if is_gateway else ServiceToken(settings, process)
        if token is not None and upstreams and settings.signing_key() is None:
            # Fail at start, not on the first reference check: this service calls others.
            raise RuntimeError(f"{process} checks references with its own token: set SPP_JWT_PRIVATE_KEY")
        engine = None
        if uses_database:
            url = settings.database_url_of(process)
            if not url:
                raise RuntimeError(f"no database URL for {process}: set SPP_DATABASE_URL or use `spp up`")
            engine = create_engine(url, settings)
            app.state.engine = engine
            app.state.session_factory = create_session_factory(engine)
            metrics.watch_pool("primary", engine)
            # The figure endpoints' engine (services.common.db.ReadSessionDep): the replica's own
            # pool when one is configured, else the primary's pool with read-only transactions.
            read_url = settings.read_database_url_of(process)
            read_engine = create_engine(read_url, settings) if read_url else engine
            if read_engine is not engine:
                metrics.watch_pool("read", read_engine)
            app.state.read_engine = read_engine
            app.state.read_session_factory = create_session_factory(read_only(read_engine))
            # Figure answers kept while the feed and the read models' cursors stay as they were.
            # (services/common/kept_answers.py serves them.)
            app.state.answer_cache = AnswerCache(
                process, read_engine, [feed.name for feed in feeds],
                counted=lambda result: metrics.answers.labels(process, result).inc())
        app.state.upstreams = make_upstreams(settings, process, upstreams, metrics, transports, token)
        # The typed clients over them, made once (services/common/clients.py).
        app.state.clients = {name: make(app.state.upstreams[name]) for name, make in (clients or {}).items()}
        metrics.watch_breakers(app.state.upstreams)
        if extra_lifespan is not None:
            await extra_lifespan(app)
        app.state.feed_consumers = []
        if feeds and engine is not None and settings.feed_consumers:
            app.state.feed_consumers = start_consumers(
                feeds, engine=engine, upstreams=app.state.upstreams, poll_interval=settings.feed_poll_interval,
                batch_size=settings.feed_batch_size, metrics=metrics)

        def feed_lag() -> None:  # the lag grows between passes while a producer is down
            for consumer in app.state.feed_consumers:
                consumer.report_lag()
        metrics.add_sampler("feeds", feed_lag)
        try:
            yield
        finally:
            await stop_consumers(app.state.feed_consumers)
            if on_shutdown is not None:
                await on_shutdown(app)
            for upstream in app.state.upstreams.values():
                await upstream.aclose()
            if engine is not None:
                if app.state.read_engine is not engine:
                    await app.state.read_engine.dispose()
                await engine.dispose()
            flush()

    # `prepare_token` lets the verifier fetch keys (JWKS) or refuse a token before any route runs.
    # FastAPI's own telemetry stays off: our TracingMiddleware records the server span (named by the
    # gateway's public route template, not its catch-all) and carries `traceparent` when nothing is
    # exported; FastAPI's would add a second server span once a tracer provider is installed.
    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan,
                  docs_url=None, redoc_url=None, dependencies=[Depends(prepare_token)],
                  telemetry={"tracing": False, "metrics": False, "logs": False, "auto_configure": False})
    app.state.settings = settings
    app.state.metrics = metrics
    # Each token checked in full once a minute at most (services/common/verified_tokens.py).
    app.state.verifier = VerifiedTokens(verifier_from_settings(settings))
    app.state.process = process
    install_problem_handlers(app)
    install_idempotency(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes,
                       import_max_bytes=settings.max_import_bytes)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    app.add_middleware(TracingMiddleware)  # outside: the access log line carries the trace id
    if not is_gateway:
        # Innermost, inside every middleware above: appended, not added (services/common/kept_answers.py).
        app.user_middleware.append(Middleware(KeptAnswers))
    app.include_router(_health_router(process, uses_database, report_upstreams=is_gateway))
    for router in routers:
        app.include_router(router)
    if docs:
        install_docs(app, openapi_url="/openapi.json", title=title)
    return app
