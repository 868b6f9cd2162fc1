"""Real processes on free loopback ports, started the way `spp up` starts them."""

from __future__ import annotations

import socket

import pytest

from services.common.settings import Settings
from services.common.supervisor import ProcessGroup, process_env
from tests.conftest import TEST_SECRET


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def platform(database_url, tmp_path):
    """Every process (the worker too) against the test database; stopped (and waited for) afterwards."""
    settings = Settings(env="test", database_url=database_url, jwt_secret=TEST_SECRET,
                        gateway_port=free_port(), partnership_port=free_port(),
                        rotation_port=free_port(), training_port=free_port(), worker_port=free_port())
    env = process_env(settings, database_url)
    env["SPP_UPSTREAM_TIMEOUT"] = "2"
    env["SPP_FEED_POLL_INTERVAL"] = "0.1"  # the read models follow their producers quickly
    group = ProcessGroup(settings, env, log_dir=tmp_path / "logs")
    group.start_all()
    try:
        group.wait_ready(timeout=60)
        yield group
    finally:
        group.stop_all()
