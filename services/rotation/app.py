"""The rotation service process: staff, rotation policies, rotation plans and rotations."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.common.app import create_service_app
from services.common.settings import Settings, get_settings


def create_app(settings: Settings | None = None, *,
               transports: dict[str, httpx.AsyncBaseTransport] | None = None) -> FastAPI:
    from services.rotation.api import routers
    from services.rotation.clients import PartnershipClient
    from services.rotation.directory import SCHOOL_FEED

    return create_service_app(
        process="rotation", settings=settings or get_settings(), routers=routers,
        title="spp rotation service",
        description="Teacher and cadre rotation (干部教师交流轮岗): the staff registry, district policies, "
                    "rotation plans and rotations.",
        upstreams=["partnership"], clients={"partnership": PartnershipClient}, transports=transports,
        feeds=[SCHOOL_FEED],  # the school directory, from partnership's change feed
    )
