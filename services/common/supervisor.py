"""Starting, stopping and keeping up the spp processes, as `spp up` and the end-to-end tests do.

`ProcessGroup` starts and stops `spp serve <name>` children. `Supervisor` keeps a set of units (the
children and the embedded PostgreSQL) running: a unit that dies is started again after a backoff
that doubles from 0.5 s to 10 s and resets once the unit has stayed up a while; a unit that keeps
dying (5 crashes within 60 s) makes it give up, so a broken setup does not spin forever.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from services.common.settings import PROCESSES, SERVICES, Settings

APP_FACTORIES = {
    "gateway": "gateway.app:create_app",
    "partnership": "services.partnership.app:create_app",
    "rotation": "services.rotation.app:create_app",
    "training": "services.training.app:create_app",
    "worker": "services.common.worker:create_app",
}


# What `spp up` runs, in start order (the gateway last: it calls the others). A new process is
# one more name here (and its factory above, for `spp serve`).
UP_PROCESSES: tuple[str, ...] = (*SERVICES, "worker", "gateway")


@dataclass
class ProcessGroup:
    """Child processes `spp serve <name>`, one per process name, sharing one environment."""

    settings: Settings
    env: Mapping[str, str]
    names: tuple[str, ...] = UP_PROCESSES
    log_dir: Path | None = None
    children: dict[str, subprocess.Popen] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"http://{self.settings.host}:{self.settings.port_of(name)}"

    def start(self, name: str) -> subprocess.Popen:
        command = [sys.executable, "-m", "services.common.cli", "serve", name]
        output = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = open(self.log_dir / f"{name}.log", "ab")  # the child keeps its own descriptor
        try:
            child = subprocess.Popen(command, env={**os.environ, **self.env}, start_new_session=True,
                                     stdout=output, stderr=subprocess.STDOUT if output else None)
        finally:
            if output is not None:
                output.close()
        self.children[name] = child
        return child

    def start_all(self) -> None:
        for name in self.names:
            self.start(name)

    def wait_ready(self, timeout: float = 60.0, names: tuple[str, ...] | None = None) -> None:
        """Poll each process's own /readyz until it answers 200 (design.md §5); a process without
        an HTTP port of its own only has to stay alive."""
        deadline = time.monotonic() + timeout
        pending = list(names or self.names)
        with httpx.Client(timeout=1.0) as client:
            while pending:
                name = pending[0]
                child = self.children[name]
                if child.poll() is not None:
                    raise NotReady(name, f"{name} exited with code {child.returncode} before it was ready")
                if name not in PROCESSES:
                    pending.pop(0)
                    continue
                try:
                    if client.get(f"{self.url(name)}/readyz").status_code == 200:
                        pending.pop(0)
                        continue
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise NotReady(name, f"{name} was not ready within {timeout:.0f} s")
                time.sleep(0.1)

    def stop(self, name: str, timeout: float = 10.0) -> None:
        child = self.children.pop(name, None)
        if child is None or child.poll() is not None:
            return
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

    def stop_all(self) -> None:
        # The gateway first, so no request reaches a service that is going away.
        for name in sorted(self.children, key=lambda n: n != "gateway"):
            self.stop(name)

    def unit(self, name: str) -> Unit:
        """`name` as a supervised unit: alive while its child runs, started again by `start`."""
        def alive() -> bool:
            child = self.children.get(name)
            return child is not None and child.poll() is None

        def exit_status() -> str:
            child = self.children.get(name)
            code = child.returncode if child is not None else None
            if code is not None and code < 0:
                return f"was killed by signal {-code}"
            return f"exited with code {code}"

        def start() -> None:
            self.start(name)

        return Unit(alive=alive, start=start, exit_status=exit_status)


@dataclass
class Unit:
    """Something the supervisor keeps running: how to tell it is alive, and how to start it."""

    alive: Callable[[], bool]
    start: Callable[[], None]
    exit_status: Callable[[], str] = lambda: "stopped"


@dataclass(frozen=True)
class RestartPolicy:
    first_delay: float = 0.5    # seconds before the first restart
    max_delay: float = 10.0     # the doubling stops here
    stable_after: float = 30.0  # a unit up this long starts again from first_delay
    max_crashes: int = 5        # this many crashes of one unit ...
    window: float = 60.0        # ... within this many seconds: give up


class NotReady(RuntimeError):
    """A process that died or never became ready while the platform started; `name` says which,
    so `spp up` can point at its log instead of printing a traceback."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


class GaveUp(RuntimeError):
    """A unit kept crashing; the caller stops everything and exits non-zero."""


@dataclass
class _State:
    started_at: float
    delay: float
    crashes: deque[float] = field(default_factory=deque)
    restart_at: float | None = None  # set while waiting to restart


class Supervisor:
    """Restarts crashed units with backoff. `step()` is called in the caller's loop; the clock is
    injectable so the policy can be tested without waiting."""

    def __init__(self, units: Mapping[str, Unit], policy: RestartPolicy = RestartPolicy(), *,
                 clock: Callable[[], float] = time.monotonic, log: Callable[[str], None] = print) -> None:
        self.units = dict(units)  # checked in this order: PostgreSQL first, so services find it
        self.policy = policy
        self._clock = clock
        self._log = log
        now = clock()
        self._states = {name: _State(started_at=now, delay=policy.first_delay) for name in self.units}

    def step(self) -> None:
        """Look at every unit once: restart those whose backoff is over, note new crashes.
        Raises `GaveUp` when a unit crashed `max_crashes` times within `window` seconds."""
        for name, unit in self.units.items():
            state = self._states[name]
            now = self._clock()
            if state.restart_at is not None:
                if now >= state.restart_at:
                    self._restart(name, unit, state, now)
                continue
            if not unit.alive():
                self._crashed(name, unit, state, now)

    def _crashed(self, name: str, unit: Unit, state: _State, now: float, why: str | None = None) -> None:
        policy = self.policy
        if now - state.started_at >= policy.stable_after:
            state.delay = policy.first_delay  # it had been fine for a while: not a crash loop
        state.crashes.append(now)
        while state.crashes and now - state.crashes[0] > policy.window:
            state.crashes.popleft()
        why = why or unit.exit_status()
        if len(state.crashes) >= policy.max_crashes:
            raise GaveUp(f"{name} {why}; it crashed {len(state.crashes)} times within "
                         f"{policy.window:g} s, giving up")
        self._log(f"{name} {why}; restarting in {state.delay:g} s "
                  f"(crash {len(state.crashes)} of {policy.max_crashes} allowed within {policy.window:g} s)")
        state.restart_at = now + state.delay
        state.delay = min(state.delay * 2, policy.max_delay)

    def _restart(self, name: str, unit: Unit, state: _State, now: float) -> None:
        state.restart_at = None
        state.started_at = now
        try:
            unit.start()
        except Exception as exc:  # a failed start is one more crash, with the same backoff
            self._crashed(name, unit, state, self._clock(), why=f"failed to start ({type(exc).__name__}: {exc})")
            return
        self._log(f"{name} restarted")


def process_env(settings: Settings, database_url: str | None) -> dict[str, str]:
    """What every child needs to find the database and each other."""
    env = {f"SPP_{name.upper()}_PORT": str(settings.port_of(name)) for name in PROCESSES}
    env.update({f"SPP_{name.upper()}_URL": settings.url_of(name) for name in SERVICES})
    env["SPP_HOST"] = settings.host
    env["SPP_JWT_SECRET"] = settings.jwt_secret
    env["SPP_JWT_ALGORITHM"] = settings.jwt_algorithm
    for name in ("jwt_public_key", "jwt_private_key"):
        if getattr(settings, name):
            env[f"SPP_{name.upper()}"] = getattr(settings, name)
    env["SPP_ENV"] = settings.env
    if database_url:
        env["SPP_DATABASE_URL"] = database_url
    return env
