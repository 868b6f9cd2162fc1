"""What the gateway hop costs: a GET straight to the owning service against the same GET through
the gateway, on real processes over loopback (`python -m benchmarks.hop`).

Throughput is requests a second from a fixed number of keep-alive connections, driven by a bare
asyncio HTTP/1.1 client so the load generator itself costs little CPU. CPU is the utime + stime
each process accumulated (from /proc) over the run, divided by the requests. Runs alternate
direct and through the gateway, so a neighbour's load on a shared machine hits both alike; read
the ratios, not the absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from benchmarks.platform import SECRET, Platform, start
from services.common.auth import mint_token

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


@dataclass
class Run:
    label: str
    requests: int
    seconds: float
    cpu: dict[str, float]

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def cpu_ms(self, process: str) -> float:
        return 1000 * self.cpu[process] / self.requests


async def _connection(url: str, path: str, token: str, count: int) -> None:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    request = (f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {token}\r\n"
               "Accept: application/json\r\n\r\n").encode()
    try:
        for _ in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if head[9:12] != b"200":
                raise RuntimeError(f"{path}: {head[:200]!r}")
            length = 0
            for line in head.lower().split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
    finally:
        writer.close()
        await writer.wait_closed()


async def measure(platform: Platform, label: str, url: str, path: str, token: str, *, requests: int,
                  connections: int) -> Run:
    pids = {name: child.pid for name, child in platform.group.children.items()}
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.perf_counter()
    each = requests // connections
    await asyncio.gather(*(_connection(url, path, token, each) for _ in range(connections)))
    seconds = time.perf_counter() - started
    cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    return Run(label, each * connections, seconds, cpu)


async def prepare(platform: Platform, token: str) -> None:
    async with httpx.AsyncClient(base_url=platform.url("gateway"), timeout=10,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        made = await client.post("/api/v1/districts", json={"code": "110105", "name": "朝阳区"})
        assert made.status_code in (201, 409), made.text
        for n in range(50):
            made = await client.post("/api/v1/schools", json={
                "code": f"S{n:03d}", "name": f"北京市朝阳区测试学校{n}", "district_code": "110105",
                "stage": "primary", "locality": "urban", "primary_enrollment": 300})
            assert made.status_code in (201, 409), made.text


def summary(runs: list[Run], label: str) -> str:
    chosen = [r for r in runs if r.label == label]
    rps = statistics.median(r.per_second for r in chosen)
    gateway = statistics.median(r.cpu_ms("gateway") for r in chosen)
    partnership = statistics.median(r.cpu_ms("partnership") for r in chosen)
    return (f"{label:<10} {rps:8.0f} req/s   gateway {gateway:6.2f} ms CPU/req   "
            f"partnership {partnership:6.2f} ms CPU/req")


async def main(requests: int, connections: int, rounds: int) -> None:
    platform = await start()
    try:
        token = mint_token(SECRET, sub="bench", role="city_admin", ttl_seconds=3600)
        await prepare(platform, token)
        for path in ("/schools/S001", "/schools?limit=50"):
            runs: list[Run] = []
            # Warm both paths (connections, caches) before anything is counted.
            await measure(platform, "warm", platform.url("partnership"), "/v1" + path, token,
                          requests=200, connections=connections)
            await measure(platform, "warm", platform.url("gateway"), "/api/v1" + path, token,
                          requests=200, connections=connections)
            for _ in range(rounds):
                runs.append(await measure(platform, "direct", platform.url("partnership"), "/v1" + path, token,
                                          requests=requests, connections=connections))
                runs.append(await measure(platform, "gateway", platform.url("gateway"), "/api/v1" + path, token,
                                          requests=requests, connections=connections))
            direct = statistics.median(r.per_second for r in runs if r.label == "direct")
            through = statistics.median(r.per_second for r in runs if r.label == "gateway")
            print(f"GET {path} ({requests} requests × {rounds} rounds, {connections} connections)")
            print("  " + summary(runs, "direct"))
            print("  " + summary(runs, "gateway"))
            # The bar's way round (docs/benchmarks.md): the share of direct throughput kept through the
            # gateway. On 2 cores the gateway and the service run side by side, so it can be near 1.
            print(f"  through the gateway / direct = {through / direct:.2f}")
    finally:
        platform.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.connections, args.rounds))
