"""The image's HEALTHCHECK: is the process this container runs ready?

One image runs every process, so the check reads the container's command line (`spp serve
rotation`) to find which port to ask. A standalone, blocking program: Docker runs it in the
container beside the server, never inside the server's event loop.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path

from services.common.settings import Settings


def served_process(argv: list[str]) -> str | None:
    """`rotation` for `python /usr/local/bin/spp serve rotation`; None for `spp migrate`."""
    for i, arg in enumerate(argv[:-1]):
        if arg == "serve":
            return argv[i + 1]
    return None


def readiness_url(argv: list[str], settings: Settings) -> str | None:
    process = served_process(argv)
    if process is None:
        return None
    return f"http://127.0.0.1:{settings.port_of(process)}/readyz"


def check(url: str | None, *, timeout: float = 2.0) -> int:
    """0 healthy, 1 unhealthy (Docker's exit codes)."""
    if url is None:
        return 0  # a one-shot command (migrate) has nothing to serve
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError):
        return 1


def main() -> int:
    # The container's first process (or the one an init process started: its argv ends the same way).
    argv = Path("/proc/1/cmdline").read_bytes().decode().split("\0")
    return check(readiness_url([a for a in argv if a], Settings()))


if __name__ == "__main__":
    sys.exit(main())
