"""Starting and stopping the four spp processes, as `spp up` and the end-to-end tests do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
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


@dataclass
class ProcessGroup:
    """Child processes `spp serve <name>`, one per process name, sharing one environment."""

    settings: Settings
    env: Mapping[str, str]
    names: tuple[str, ...] = (*SERVICES, "worker", "gateway")
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
        """Poll each process's own /readyz until it answers 200 (design.md §5)."""
        deadline = time.monotonic() + timeout
        pending = list(names or self.names)
        with httpx.Client(timeout=1.0) as client:
            while pending:
                name = pending[0]
                child = self.children[name]
                if child.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {child.returncode} before it was ready")
                try:
                    if client.get(f"{self.url(name)}/readyz").status_code == 200:
                        pending.pop(0)
                        continue
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} was not ready within {timeout:.0f} s")
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

    def first_exited(self) -> str | None:
        for name, child in self.children.items():
            if child.poll() is not None:
                return name
        return None


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
