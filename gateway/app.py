"""The gateway process: the single public entry (design.md §2 and §5)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from starlette.middleware import Middleware

from gateway import oauth, openapi, proxy
from gateway.browsers import install_browser_support
from gateway.fast_path import ProxyFastPath
from gateway.ratelimit import RateLimitMiddleware
from gateway.views import routers as view_routers
from services.common.app import create_service_app
from services.common.docs import install_docs
from services.common.settings import SERVICES, Settings, get_settings

DESCRIPTION = """
Public API of the school partnership platform (学校结对帮扶平台): hand-in-hand pairings (手拉手),
teacher and cadre rotation (交流轮岗), famous-teacher studios (名师工作室), and per-district views
against the national bars for high-quality balanced compulsory education (优质均衡).

Authenticate with `Authorization: Bearer <JWT>`. Errors are RFC 9457 problem details, in Chinese
(问题说明默认为中文) or in English with `Accept-Language: en`; their `type` never changes. Lists take
`limit` (≤ 500) and an opaque `cursor`, and answer `items` and `next_cursor`.
"""


def create_app(settings: Settings | None = None, *,
               transports: dict[str, httpx.AsyncBaseTransport] | None = None) -> FastAPI:
    settings = settings or get_settings()

    async def init(app: FastAPI) -> None:
        app.state.openapi_cache = {}

    # The gateway's own state is the integration-client registry (gateway/clients_registry.py);
    # Idempotency-Key records live with the services that write. /readyz checks its database and
    # reports each upstream.
    app = create_service_app(
        process="gateway", settings=settings, uses_database=True,
        # Views first: their paths are more specific than the catch-all proxy route.
        routers=[*view_routers, openapi.router, oauth.router, proxy.router],
        title="spp — school partnership platform", description=DESCRIPTION,
        upstreams=SERVICES, transports=transports, extra_lifespan=init, docs=False, is_gateway=True,
    )
    install_docs(app, openapi_url=f"{openapi.PUBLIC_PREFIX}/openapi.json", title="spp API")
    oauth.install_client_registry(app)
    if settings.rate_limit_per_minute:
        app.add_middleware(RateLimitMiddleware, per_minute=settings.rate_limit_per_minute,
                           storage=settings.rate_limit_storage)
    install_browser_support(app, settings)
    # Innermost, inside every middleware above (gateway/fast_path.py): appended, not added.
    app.user_middleware.append(Middleware(ProxyFastPath))
    return app
