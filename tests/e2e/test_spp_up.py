"""`spp up` itself: embedded PostgreSQL, migrations, four processes, URLs and a token; SIGTERM stops
everything, and the data is there again on the next start."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import free_port

pytestmark = pytest.mark.e2e


def _start(data_dir: Path, ports: dict[str, int], *extra: str) -> tuple[subprocess.Popen, str, str]:
    env = {**os.environ, "SPP_DATA_DIR": str(data_dir), "SPP_JWT_SECRET": "up-test-secret-0123456789abcdef0123"}
    env.pop("SPP_DATABASE_URL", None)
    env.update({f"SPP_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    process = subprocess.Popen([sys.executable, "-m", "services.common.cli", "up", *extra], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Ctrl-C stops everything"):
            break
    output = "".join(lines)
    gateway = re.search(r"gateway:\s+(http://\S+)/api/v1", output)
    token = re.search(r"token \(city_admin.*\):\n\s+(\S+)", output)
    assert gateway and token, output
    return process, gateway.group(1), token.group(1)


def _stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=30)
    return rest


def test_up_serves_stops_cleanly_and_keeps_data(spp_data_dir):
    ports = {name: free_port() for name in ("gateway", "partnership", "rotation", "training", "worker")}
    process, gateway, token = _start(spp_data_dir, ports)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        created = httpx.post(f"{gateway}/api/v1/districts", json={"code": "110108", "name": "海淀区"},
                             headers=headers, timeout=10)
        assert created.status_code == 201
        ready = httpx.get(f"{gateway}/readyz", timeout=5).json()
        assert ready["upstreams"] == {"partnership": "ready", "rotation": "ready", "training": "ready"}
        assert httpx.get(f"{gateway}/docs", timeout=5).status_code == 200
    finally:
        tail = _stop(process)
    assert process.returncode == 0, tail
    assert "stopped." in tail
    for port in ports.values():  # every child is gone
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/livez", timeout=1)
    assert not (spp_data_dir / "pg" / "postmaster.pid").exists()  # PostgreSQL stopped cleanly

    process, gateway, token = _start(spp_data_dir, ports)
    try:
        districts = httpx.get(f"{gateway}/api/v1/districts", headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"},
                              timeout=10).json()
        assert [(d["code"], d["name"]) for d in districts["items"]] == [("110108", "海淀区")]
    finally:
        _stop(process)
    assert process.returncode == 0
