"""The training service process: famous-teacher studios, sessions and the training-hours ledger."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.common.app import create_service_app
from services.common.settings import Settings, get_settings


def create_app(settings: Settings | None = None, *,
               transports: dict[str, httpx.AsyncBaseTransport] | None = None) -> FastAPI:
    return create_service_app(
        process="training", settings=settings or get_settings(), routers=[],
        title="spp training service", description="Famous-teacher studios (名师工作室) and training hours.",
        upstreams=["rotation"], transports=transports,
    )
