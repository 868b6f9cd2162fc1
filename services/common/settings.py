"""Process configuration from `SPP_*` environment variables (design.md §6)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

SERVICES = ("partnership", "rotation", "training")
# The worker runs the services' jobs (services/common/jobs.py); it serves only health and metrics.
PROCESSES = ("gateway", *SERVICES, "worker")
DEVELOPMENT_SECRET = "spp-development-secret-change-me-0123456789"

# Docker and Kubernetes mount secrets as files here: /run/secrets/SPP_JWT_SECRET sets jwt_secret,
# so a secret need not sit in the environment (where `docker inspect` and crash dumps show it).
SECRETS_DIR = "/run/secrets"


class Settings(BaseSettings):
    """One settings object per process; every process reads the same variables."""

    model_config = SettingsConfigDict(env_prefix="SPP_", extra="ignore", secrets_dir=SECRETS_DIR)

    env: Literal["development", "test", "production"] = "development"
    database_url: str | None = Field(
        default=None, description="PostgreSQL URL; unset means the embedded server under data_dir"
    )
    partnership_database_url: str | None = None
    rotation_database_url: str | None = None
    training_database_url: str | None = None
    gateway_database_url: str | None = None
    # A streaming replica for the figures the gateway's overviews read (docs/scaling.md §1); unset
    # means the service's primary. Writes and a write's own checks always go to the primary.
    partnership_read_database_url: str | None = None
    rotation_read_database_url: str | None = None
    training_read_database_url: str | None = None
    idempotency_ttl_hours: int = Field(default=24, ge=1)
    idempotency_wait_seconds: float = Field(
        default=5.0, gt=0, description="How long a duplicate waits for the first request with its Idempotency-Key")
    data_dir: Path = Path(".spp")

    jwt_secret: str = DEVELOPMENT_SECRET
    jwt_algorithm: str = "HS256"
    jwt_public_key: str | None = Field(
        default=None, description="PEM key for RS256/ES256 tokens; replaces the shared secret"
    )
    jwt_private_key: str | None = Field(
        default=None, description="PEM key the services sign their own reference checks with (RS/ES mode)"
    )
    token_ttl_seconds: int = 8 * 3600

    host: str = "127.0.0.1"
    gateway_port: int = 8000
    partnership_port: int = 8001
    rotation_port: int = 8002
    training_port: int = 8003
    worker_port: int = 8004
    partnership_url: str | None = None
    rotation_url: str | None = None
    training_url: str | None = None

    upstream_timeout: float = Field(default=2.0, gt=0)
    upload_timeout: float = Field(default=120.0, gt=0, description=(
        "Deadline of a bulk upload through the gateway: the body transfer and the first answer"))
    upstream_connections: int = Field(default=20, ge=1)
    upstream_pool: Literal["aiohttp", "httpx"] = Field(
        default="aiohttp", description="Connection pool under the upstream clients' httpx API")
    breaker_failures: int = Field(default=3, ge=1)
    breaker_cooldown: float = Field(default=5.0, gt=0)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    max_import_bytes: int = Field(default=32 * 1024 * 1024, ge=1, description="Body limit of /imports")
    import_sync_rows: int = Field(default=5000, ge=0, description="Larger imports run as a job (202)")
    proposal_sync_staff: int = Field(default=2000, ge=0, description=(
        "A rotation proposal for a district with more active staff runs as a job (202)"))
    import_batch_rows: int = Field(default=5000, ge=1, description="Rows a job parses, checks and copies at once")
    job_attempts: int = Field(default=3, ge=1, description="Starts of a job before it is reported failed")
    job_retry_seconds: int = Field(default=5, ge=0, description="Wait before a failed job's next attempt")
    worker_concurrency: int = Field(default=1, ge=1, description="Jobs one worker runs at once per database")
    worker_heartbeat_seconds: float = Field(default=10.0, gt=0)
    worker_stalled_seconds: float = Field(default=30.0, gt=0,
                                          description="A worker silent this long is dead: its jobs are retried")
    worker_shutdown_seconds: float = Field(default=3.0, ge=0, description="Grace for running jobs at a stop")
    # 15 kept, none beyond: an overflow connection is closed as soon as it is returned, so a burst
    # past the pool opened and closed a backend per request (measured with 16 clients on the
    # district overview: 109/s with 10 + 5, 139/s with 15 + 0). Past the pool a request waits up to
    # db_pool_timeout for a connection, which on a few cores is cheaper than a new backend.
    db_pool_size: int = Field(default=15, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    db_pool_timeout: float = Field(default=2.0, gt=0)
    feed_poll_interval: float = Field(
        default=1.0, gt=0, description="Seconds between reads of a producer's change feed (local read models)")
    feed_batch_size: int = Field(default=500, ge=1, le=500, description="Changes applied per transaction")
    feed_consumers: bool = Field(default=True, description="Run the change-feed consumers in this process")
    log_level: str = "INFO"
    rate_limit_per_minute: int = Field(default=0, ge=0, description="0 disables the limit")
    rate_limit_storage: str = Field(
        default="memory://", description="Where the limit counts: memory:// per process, redis://… shared by replicas")

    # Browsers and integrators (issue 11).
    cors_origins: str = Field(default="", description="Comma-separated origins allowed by CORS; empty: off")
    jwt_jwks_url: str | None = Field(default=None, description="JWKS of an identity provider whose tokens we accept")
    jwt_jwks_cache_seconds: float = Field(default=300.0, gt=0, description="How long a fetched JWKS is used")
    jwt_audience: str | None = Field(default=None, description="Required `aud` of every token, when set")
    jwt_issuer: str | None = Field(default=None, description="Required `iss` of every token, when set")
    jwt_max_lifetime_seconds: int = Field(default=24 * 3600, ge=60,
                                          description="Tokens whose exp - iat exceeds this are refused")
    oauth_token_ttl_seconds: int = Field(default=900, ge=60, description="Lifetime of client-credentials tokens")
    client_cache_seconds: float = Field(default=5.0, ge=0,
                                        description="How long the gateway caches whether a client is revoked")

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple:
        # Environment first, then secret files; a machine without the secrets directory (a
        # developer's) skips the files instead of warning on every start.
        secrets_dir = getattr(file_secret_settings, "secrets_dir", None)
        files = (file_secret_settings,) if secrets_dir and Path(secrets_dir).is_dir() else ()
        return init_settings, env_settings, dotenv_settings, *files

    @model_validator(mode="after")
    def _refuse_default_secret_in_production(self) -> Settings:
        # A token minted with a published secret would open every district's data.
        if self.env == "production" and self.jwt_public_key is None and (
            self.jwt_secret == DEVELOPMENT_SECRET or len(self.jwt_secret) < 32
        ):
            raise ValueError("SPP_JWT_SECRET must be set to a private value of 32+ characters in production")
        # Tokens this deployment mints must pass its own lifetime check.
        for name in ("token_ttl_seconds", "oauth_token_ttl_seconds"):
            if getattr(self, name) > self.jwt_max_lifetime_seconds:
                raise ValueError(f"SPP_{name.upper()} exceeds SPP_JWT_MAX_LIFETIME_SECONDS")
        return self

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    def signing_key(self) -> tuple[str, str] | None:
        """(key, algorithm) for tokens this deployment mints itself; None when it holds no key."""
        if self.jwt_public_key:
            return (self.jwt_private_key, self.jwt_algorithm) if self.jwt_private_key else None
        return self.jwt_secret, "HS256"

    def port_of(self, process: str) -> int:
        return getattr(self, f"{process}_port")

    def url_of(self, service: str) -> str:
        """Base URL of an upstream service as the gateway and the services reach it."""
        explicit = getattr(self, f"{service}_url")
        return explicit or f"http://{self.host}:{self.port_of(service)}"

    def database_url_of(self, service: str) -> str | None:
        return getattr(self, f"{service}_database_url", None) or self.database_url

    def read_database_url_of(self, service: str) -> str | None:
        """Where a service's figure endpoints read (`SPP_<SERVICE>_READ_DATABASE_URL`); None: the primary."""
        return getattr(self, f"{service}_read_database_url", None)


@lru_cache
def get_settings() -> Settings:
    return Settings()
