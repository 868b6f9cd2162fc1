"""The gateway process."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.common.app import create_service_app
from services.common.settings import SERVICES, Settings, get_settings


def create_app(settings: Settings | None = None, *,
               transports: dict[str, httpx.AsyncBaseTransport] | None = None) -> FastAPI:
    return create_service_app(
        process="gateway", settings=settings or get_settings(), routers=[],
        title="spp — school partnership platform", description="Public API.",
        uses_database=False, upstreams=SERVICES, transports=transports,
    )
