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


# The job queue's history (procrastinate's schema), once in each database a service uses.
JOBS = "jobs"


def job_databases(settings: Settings) -> list[str]:
    """The distinct databases of the services, in service order: each holds its services' jobs."""
    urls = [settings.database_url_of(service) for service in SERVICES]
    return list(dict.fromkeys(url for url in urls if url))


def upgrade_all(settings: Settings, revision: str = "head") -> None:
    """Blocking (Alembic drives its own event loop): call from a thread in async code."""
    for service in SCHEMAS:
        url = settings.database_url_of(service)
        if not url:
            raise RuntimeError("no database URL: set SPP_DATABASE_URL or run through `spp up`")
        command.upgrade(alembic_config(service, url), revision)
    for url in job_databases(settings):
        command.upgrade(alembic_config(JOBS, url), revision)

