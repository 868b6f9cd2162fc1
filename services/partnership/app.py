"""The partnership service process: districts, schools, pairings and their activities."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.common.app import create_service_app
from services.common.settings import Settings, get_settings


def create_app(settings: Settings | None = None, *,
               transports: dict[str, httpx.AsyncBaseTransport] | None = None) -> FastAPI:
    from services.partnership.api import routers

    return create_service_app(
        process="partnership", settings=settings or get_settings(), routers=routers,
        title="spp partnership service",
        description="Districts, the school registry and hand-in-hand pairings (手拉手结对帮扶).",
        transports=transports,
    )
