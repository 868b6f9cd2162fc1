"""`spp`: run the platform (`up`), one process (`serve`), migrations, demo data and tokens."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from services.common.settings import PROCESSES, Settings, get_settings

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="School partnership platform (学校结对帮扶平台).")


def _database_url(settings: Settings) -> tuple[str, object | None]:
    """The configured URL, or the embedded PostgreSQL's (started or attached) when none is set."""
    if settings.database_url:
        return settings.database_url, None
    from services.common.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(settings.data_dir)
    return server.start(), server


def _last_line(log: Path) -> str:
    """The last error a process logged (else its last line), which usually says why it stopped."""
    try:  # the log is appended to across runs: its end is this run's
        with log.open("rb") as handle:
            handle.seek(max(0, handle.seek(0, 2) - 65536))
            tail = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [line for line in tail.splitlines() if line.strip()]
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        records.append(record if isinstance(record, dict) else {"msg": line})
    errors = [r for r in records if r.get("level") in ("error", "critical")]
    last = (errors or records or [None])[-1]
    return "" if last is None else f" (it logged: {str(last.get('msg', ''))[:300]})"


@app.command()
def up(demo: Annotated[bool, typer.Option("--demo", help="Load Beijing demo data")] = False,
       ready_timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness")] = 90.0,
       restart_delay: Annotated[float, typer.Option(help="Seconds before the first restart of a crashed "
                                                         "process (doubling up to 10 s)")] = 0.5,
       max_crashes: Annotated[int, typer.Option(help="Give up (and exit 1) after this many crashes of "
                                                     "one process within 60 s")] = 5) -> None:
    """Start PostgreSQL (embedded unless SPP_DATABASE_URL is set), migrate, run all processes and
    keep them running: a crashed process (or the embedded PostgreSQL) is restarted with backoff.
    Ctrl-C or SIGTERM stops everything."""
    from services.common.auth import mint_with
    from services.common.logging import configure_logging
    from services.common.migrate import upgrade_all
    from services.common.supervisor import GaveUp, NotReady, ProcessGroup, RestartPolicy, Supervisor, Unit, process_env

    settings = get_settings()
    configure_logging("spp", "WARNING")
    typer.echo("starting PostgreSQL …" if not settings.database_url else "using SPP_DATABASE_URL …")
    url, server = _database_url(settings)
    upgrade_all(settings.model_copy(update={"database_url": url}))
    log_dir = settings.data_dir / "logs"
    group = ProcessGroup(settings, process_env(settings, url), log_dir=log_dir)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    exit_code = 0
    try:
        group.start_all()
        try:
            group.wait_ready(timeout=ready_timeout)
        except NotReady as exc:
            typer.echo(f"{exc}; see {log_dir / f'{exc.name}.log'}{_last_line(log_dir / f'{exc.name}.log')}; "
                       "stopping everything", err=True)
            raise typer.Exit(1) from None
        token = mint_with(settings, sub="developer", role="city_admin", ttl_seconds=settings.token_ttl_seconds)
        gateway = group.url("gateway")
        if demo:
            from services.common.seed import seed_demo

            counts = asyncio.run(seed_demo(gateway, token))
            typer.echo(f"demo data: {counts}")
        typer.echo(f"\nspp is up.\n  gateway:  {gateway}/api/v1\n  docs:     {gateway}/docs\n"
                   f"  token (city_admin, {settings.token_ttl_seconds // 3600} h):\n    {token}\n"
                   f"  try: curl -H 'Authorization: Bearer <token>' {gateway}/api/v1/districts\n"
                   f"  logs:     {log_dir}/<process>.log\n"
                   "Ctrl-C stops everything.", )
        units = {}
        if server is not None:
            units["postgres"] = Unit(alive=server.running, start=server.start, exit_status=lambda: "is not running")
        units.update({name: group.unit(name) for name in group.names})
        supervisor = Supervisor(units, RestartPolicy(first_delay=restart_delay, max_crashes=max_crashes),
                                log=lambda line: typer.echo(line, err=True))
        while not stop.wait(0.2):
            try:
                supervisor.step()
            except GaveUp as exc:
                typer.echo(f"{exc}; stopping everything", err=True)
                exit_code = 1
                break
    finally:
        group.stop_all()
        if server is not None:
            server.stop()
        typer.echo("stopped.")
    if exit_code:
        raise typer.Exit(exit_code)


@app.command()
def serve(process: Annotated[str, typer.Argument(help="gateway, partnership, rotation, training or worker")]) -> None:
    """Run one process in the foreground (the container entry point)."""
    import uvicorn

    from services.common.logging import configure_logging
    from services.common.supervisor import APP_FACTORIES

    if process not in PROCESSES:
        raise typer.BadParameter(f"choose one of {', '.join(PROCESSES)}")
    settings = get_settings()
    if not settings.database_url_of(process):
        url, _ = _database_url(settings)
        os.environ["SPP_DATABASE_URL"] = url
        get_settings.cache_clear()
    configure_logging(process, settings.log_level)

    def factory() -> Any:
        from uvicorn.importer import import_from_string

        from services.common.heap import settle

        return settle(import_from_string(APP_FACTORIES[process])())

    uvicorn.run(factory, factory=True, host=settings.host, port=settings.port_of(process),
                log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=5)


@app.command()
def migrate() -> None:
    """Upgrade every service schema to the newest revision."""
    from services.common.migrate import upgrade_all

    settings = get_settings()
    url, server = _database_url(settings)
    upgrade_all(settings.model_copy(update={"database_url": url}))
    typer.echo("migrated: partnership, rotation, training, gateway, jobs")
    if server is not None:
        server.stop()


@app.command()
def seed(demo: Annotated[bool, typer.Option("--demo", help="Beijing's 16 districts and a few schools each")] = True,
         gateway: Annotated[str | None, typer.Option(help="Gateway URL (default from settings)")] = None) -> None:
    """Load demo data through the public API of a running platform (idempotent)."""
    from services.common.auth import mint_with
    from services.common.seed import seed_demo

    settings = get_settings()
    token = mint_with(settings, sub="seed", role="city_admin", ttl_seconds=3600)
    base = gateway or f"http://{settings.host}:{settings.gateway_port}"
    typer.echo(f"demo data: {asyncio.run(seed_demo(base, token))}")


ROLES_HELP = "city_admin, district_admin, school_admin, viewer, integrator"


@app.command()
def token(role: Annotated[str, typer.Option(help=ROLES_HELP)] = "city_admin",
          district: Annotated[list[str] | None, typer.Option("--district", help="District code (repeatable)")] = None,
          school: Annotated[list[str] | None, typer.Option("--school", help="School code (repeatable)")] = None,
          sub: Annotated[str, typer.Option(help="Subject")] = "developer",
          ttl: Annotated[int, typer.Option(help="Lifetime in seconds")] = 8 * 3600) -> None:
    """Mint a bearer token signed with the configured secret."""
    from services.common.auth import Role, mint_with

    try:
        Role(role)
    except ValueError:
        raise typer.BadParameter(f"unknown role {role!r}") from None
    settings = get_settings()
    typer.echo(mint_with(settings, sub=sub, role=role, districts=district or (), schools=school or (),
                         ttl_seconds=ttl))


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
