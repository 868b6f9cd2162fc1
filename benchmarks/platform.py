"""The platform under test, started the way `spp up` starts it: an embedded PostgreSQL, migrations,
then every process of `services.common.supervisor` on free loopback ports.

A `worker` process (the job queue's) is started too when the supervisor knows one, so the harness
works before and after it exists. Memory is read from /proc after the run.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from services.common import supervisor
from services.common.embedded import EmbeddedPostgres
from services.common.migrate import upgrade_all
from services.common.settings import Settings
from services.common.supervisor import ProcessGroup, process_env

SECRET = "benchmark-secret-0123456789abcdef-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_names() -> tuple[str, ...]:
    """The supervisor's process names, plus `worker` when it knows how to run one."""
    names = tuple(ProcessGroup.__dataclass_fields__["names"].default)
    known = set(getattr(supervisor, "APP_FACTORIES", {})) | set(getattr(supervisor, "PROCESSES", ()))
    if "worker" in known and "worker" not in names:
        names = (*names, "worker")
    return names


@dataclass
class Platform:
    work: Path
    server: EmbeddedPostgres
    database_url: str
    settings: Settings
    group: ProcessGroup

    def url(self, name: str) -> str:
        return self.group.url(name)

    def dsn(self) -> str:
        """The database URL for asyncpg (the benchmark's own SQL: the floor, id look-ups)."""
        return self.database_url

    def stop(self) -> None:
        try:
            self.group.stop_all()
        finally:
            self.server.stop()


async def start(work: Path | None = None) -> Platform:
    work = work or Path(tempfile.mkdtemp(prefix="spp-bench-"))
    server = EmbeddedPostgres(work / "data", database="bench")
    url = server.start()
    names = process_names()
    ports = {f"{name}_port": free_port() for name in names if f"{name}_port" in Settings.model_fields}
    settings = Settings(env="test", database_url=url, jwt_secret=SECRET, **ports)
    await asyncio.to_thread(upgrade_all, settings)  # Alembic drives its own event loop
    env = process_env(settings, url)
    env["SPP_LOG_LEVEL"] = "WARNING"
    group = ProcessGroup(settings, env, names=names, log_dir=work / "logs")
    group.start_all()
    platform = Platform(work=work, server=server, database_url=url, settings=settings, group=group)
    try:
        # Processes without a port of their own (a queue worker) have no /readyz to wait for.
        served = tuple(n for n in names if f"{n}_port" in Settings.model_fields)
        await asyncio.to_thread(group.wait_ready, 120, served)
    except BaseException:
        platform.stop()
        raise
    return platform


# Memory -------------------------------------------------------------------------------------

def _status_kib(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _pss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def memory(platform: Platform) -> dict[str, dict[str, float]]:
    """RSS (MiB) of each platform process; for PostgreSQL the postmaster and its backends, summed
    both as RSS (shared buffers counted in every process) and as PSS (shared pages split)."""
    result: dict[str, dict[str, float]] = {}
    for name, child in platform.group.children.items():
        rss = _status_kib(child.pid, "VmRSS")
        # `spp serve` may run the app in a child (uvicorn workers): count the whole tree.
        tree = [child.pid, *_children(child.pid)]
        result[name] = {"rss_mib": (sum(_status_kib(p, "VmRSS") or 0 for p in tree) if rss is not None else 0) / 1024,
                        "processes": len(tree)}
    pid_file = platform.server.data_dir / "pg" / "postmaster.pid"
    try:
        postmaster = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return result
    tree = [postmaster, *_children(postmaster)]
    result["postgresql"] = {"rss_mib": sum(_status_kib(p, "VmRSS") or 0 for p in tree) / 1024,
                            "pss_mib": sum(_pss_kib(p) or 0 for p in tree) / 1024, "processes": len(tree)}
    return result


# CPU ----------------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """utime + stime of one process, in seconds (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def cpu(platform: Platform) -> dict[str, float]:
    """CPU seconds used so far by each platform process (its tree), PostgreSQL (the postmaster and
    its backends) and the load generator (this process): read before and after a series, the
    difference says which part of the machine the series kept busy. PostgreSQL is read per
    process (`postgresql:<pid>`), `measure.run` adds its processes up."""
    used = {name: sum(_cpu_s(p) for p in (child.pid, *_children(child.pid)))
            for name, child in platform.group.children.items()}
    try:
        postmaster = int((platform.server.data_dir / "pg" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        postmaster = None
    if postmaster is not None:
        # Per process: backends come and go (autovacuum, parallel workers); `measure.run` sums the
        # differences of the processes it saw, so one that exits under-counts, never goes negative.
        for pid in (postmaster, *_children(postmaster)):
            used[f"postgresql:{pid}"] = _cpu_s(pid)
    times = os.times()
    used["load generator"] = times.user + times.system
    return used
