"""`spp up` keeps the platform up: a killed process (kill -9) is restarted while the others keep
serving, the embedded PostgreSQL too, and a process that keeps crashing makes it give up, exit
non-zero and leave nothing running."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.conftest import free_port
from tests.e2e.test_spp_up import _start, _stop

pytestmark = pytest.mark.e2e
NAMES = ("gateway", "partnership", "rotation", "training", "worker")
PARAMS = {"as_of": "2025-03-01", "academic_year": 2024}


def _child(up: psutil.Process, name: str) -> psutil.Process:
    """The live `spp serve <name>` child of `spp up`."""
    for child in up.children():
        try:
            if child.cmdline()[-2:] == ["serve", name] and child.status() != psutil.STATUS_ZOMBIE:
                return child
        except psutil.Error:
            continue
    raise AssertionError(f"no live {name} child")


def _postmaster(data_dir: Path) -> int:
    return int((data_dir / "pg" / "postmaster.pid").read_text().splitlines()[0])


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_ready(url: str, within: float) -> float:
    """Seconds until `url`/readyz answers 200; fails after `within` seconds."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} was not ready within {within} s")


def test_a_killed_service_and_a_killed_postgres_come_back(spp_data_dir):
    ports = {name: free_port() for name in NAMES}
    data_dir = spp_data_dir
    process, gateway, token = _start(data_dir, ports)
    up = psutil.Process(process.pid)
    try:
        api = httpx.Client(base_url=f"{gateway}/api/v1", headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"}, timeout=10)
        assert api.post("/districts", json={"code": "110105", "name": "朝阳区"}).status_code == 201
        assert api.get("/districts/110105/overview", params=PARAMS).json()["degraded"] == []

        # kill -9 training: the gateway keeps answering, training is back within 10 s.
        training = _child(up, "training")
        training.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        training.wait(5)
        overview = api.get("/districts/110105/overview", params=PARAMS)
        assert overview.status_code == 200
        assert overview.json()["degraded"] == ["training"]
        assert overview.json()["training"] is None
        _wait_ready(f"http://127.0.0.1:{ports['training']}", within=10 - (time.monotonic() - killed_at))
        assert _child(up, "training").pid != training.pid
        overview = api.get("/districts/110105/overview", params=PARAMS)
        assert overview.status_code == 200
        assert overview.json()["degraded"] == []
        assert overview.json()["training"] is not None

        # kill -9 the postmaster: calls answer 503 until it is back, then writes succeed.
        postmaster = _postmaster(data_dir)
        os.kill(postmaster, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while True:
            answer = api.get("/districts")
            if answer.status_code == 503 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert answer.status_code == 503, answer.text
        assert answer.json()["type"] == "urn:spp:problem:database-unavailable"
        assert answer.headers["retry-after"] == "5"
        _wait_ready(f"http://127.0.0.1:{ports['partnership']}", within=30)
        assert _postmaster(data_dir) != postmaster and _alive(_postmaster(data_dir))
        # A client retries a 503 (the gateway's circuit may still be open for its cooldown, or the
        # pool still reconnecting) with one Idempotency-Key: the write lands once, within seconds.
        deadline = time.monotonic() + 10
        while True:
            created = api.post("/districts", json={"code": "110108", "name": "海淀区"},
                               headers={"Idempotency-Key": "after-postgres-restart"})
            if created.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert created.status_code == 201, created.text
        listed = api.get("/districts").json()["items"]
        assert [d["code"] for d in listed] == ["110105", "110108"]
    finally:
        output = _stop(process)
    assert process.returncode == 0, output
    assert "training was killed by signal 9; restarting in 0.5 s" in output
    assert "postgres is not running; restarting in 0.5 s" in output
    assert "postgres restarted" in output


def test_a_crash_loop_makes_up_give_up_and_leave_nothing_running(spp_data_dir):
    ports = {name: free_port() for name in NAMES}
    data_dir = spp_data_dir
    process, _, _ = _start(data_dir, ports, "--restart-delay", "0.1", "--max-crashes", "3")
    up = psutil.Process(process.pid)
    squatter = socket.socket()
    try:
        children = up.children()
        postmaster = _postmaster(data_dir)
        training = _child(up, "training")
        training.send_signal(signal.SIGKILL)
        training.wait(5)
        # Its port is taken now: every restart of training fails at once.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", ports["training"]))
        squatter.listen()
        output, _ = process.communicate(timeout=60)
    finally:
        squatter.close()
        if process.poll() is None:
            output = _stop(process)
    assert process.returncode == 1, output
    assert ("training exited with code 3; it crashed 3 times within 60 s, giving up; stopping everything"
            in output)  # uvicorn exits 3 when it cannot bind
    assert output.count("training exited with code 3; restarting") == 1
    assert "stopped." in output
    assert not [child.pid for child in children if _alive(child.pid)]
    assert not _alive(postmaster)
    assert not (data_dir / "pg" / "postmaster.pid").exists()
    for name in ("gateway", "partnership", "rotation"):
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{ports[name]}/livez", timeout=1)


def test_a_process_that_cannot_start_is_named_with_its_log_and_no_traceback(spp_data_dir):
    """The worker's port is held by something else (a forgotten `spp serve worker`, say) before
    `spp up` starts: up says which process, its log and the log's last words, exits 1 and leaves
    nothing running."""
    ports = {name: free_port() for name in NAMES}
    env = {**os.environ, "SPP_DATA_DIR": str(spp_data_dir), "SPP_JWT_SECRET": "up-test-secret-0123456789abcdef0123"}
    env.pop("SPP_DATABASE_URL", None)
    env.update({f"SPP_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", ports["worker"]))
    squatter.listen()
    try:
        done = subprocess.run([sys.executable, "-m", "services.common.cli", "up"], env=env, capture_output=True,
                              text=True, timeout=120)
    finally:
        squatter.close()
    log = spp_data_dir / "logs" / "worker.log"
    assert done.returncode == 1, done.stdout + done.stderr
    assert (f"worker exited with code 3 before it was ready; see {log} (it logged: [Errno 98] error while "
            f"attempting to bind on address ('127.0.0.1', {ports['worker']}): address already in use); "
            "stopping everything") in done.stderr
    assert "Traceback" not in done.stdout + done.stderr and "RuntimeError" not in done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("stopped.")
    assert not (spp_data_dir / "pg" / "postmaster.pid").exists()
    for name in ("gateway", "partnership", "rotation", "training"):
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{ports[name]}/livez", timeout=1)
