"""The training service process: famous-teacher studios, sessions and the training-hours ledger."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.common.app import create_service_app
from services.common.settings import Settings, get_settings
from services.training.config import TrainingRules


def create_app(settings: Settings | None = None, *,
               transports: dict[str, httpx.AsyncBaseTransport] | None = None,
               rules: TrainingRules | None = None) -> FastAPI:
    """`rules` overrides the threshold and window read from `SPP_TRAINING_*` (tests use it)."""
    from services.training.api import routers
    from services.training.clients import RotationClient
    from services.training.directory import STAFF_FEED

    training_rules = rules or TrainingRules()

    async def wire(app: FastAPI) -> None:
        app.state.training_rules = training_rules

    return create_service_app(
        process="training", settings=settings or get_settings(), routers=routers,
        title="spp training service",
        description="Famous-teacher studios (名师工作室), their sessions and the training-hours ledger "
                    "(继续教育学时).",
        upstreams=["rotation"], clients={"rotation": RotationClient}, transports=transports, extra_lifespan=wire,
        feeds=[STAFF_FEED],  # the staff directory, from rotation's change feed
    )
