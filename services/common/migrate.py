"""Run every service's Alembic history (design.md §2: one schema and version table each)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

import migrations
from services.common.settings import SERVICES, Settings

MIGRATIONS_DIR = Path(migrations.__file__).parent
# Each service's schema, plus the gateway's: it holds no tables since gateway_0002 (Idempotency-Key
# records moved to the services), but its history still runs so that migration and its undo apply.
SCHEMAS = (*SERVICES, "gateway")


def alembic_config(service: str, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR / service))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_all(settings: Settings, revision: str = "head") -> None:
    """Blocking (Alembic drives its own event loop): call from a thread in async code."""
    for service in SCHEMAS:
        url = settings.database_url_of(service)
        if not url:
            raise RuntimeError("no database URL: set SPP_DATABASE_URL or run through `spp up`")
        command.upgrade(alembic_config(service, url), revision)


def downgrade_all(settings: Settings, revision: str = "base") -> None:
    for service in reversed(SCHEMAS):
        command.downgrade(alembic_config(service, settings.database_url_of(service) or ""), revision)
