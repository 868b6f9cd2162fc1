"""Latency and throughput of bounded series of calls (HTTP or SQL), with status counts.

Percentiles are nearest-rank over every call of a series; throughput is calls over the series'
wall time. A call that answers an unexpected status (or raises) is an error and is counted, and
its latency is kept, so a fast failure cannot hide in the percentiles.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class Series:
    name: str
    concurrency: int
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: int = 0
    elapsed_s: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds per part of the machine, over the series

    @property
    def cores_busy(self) -> float | None:
        """Average cores kept busy over the series (every part summed), when CPU was read."""
        return sum(self.cpu_s.values()) / self.elapsed_s if self.cpu_s and self.elapsed_s > 0 else None

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    @property
    def p50(self) -> float:
        return percentile(self.latencies_ms, 0.50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies_ms, 0.99)

    @property
    def throughput(self) -> float:
        return self.count / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def line(self) -> str:
        busy = f", {self.cores_busy:.2f} cores busy" if self.cores_busy is not None else ""
        return (f"{self.name}: {self.count} calls, {self.concurrency} client(s), {self.throughput:.1f}/s, "
                f"p50 {self.p50:.1f} ms, p99 {self.p99:.1f} ms, errors {self.errors} {dict(self.statuses)}{busy}")


Call = Callable[[int], Awaitable[int]]  # call number -> status (200 for a SQL run)


async def run(name: str, call: Call, *, count: int, concurrency: int, expect: frozenset[int] = frozenset({200}),
              cpu: Callable[[], dict[str, float]] | None = None) -> Series:
    """`count` calls with `concurrency` clients, each taking the next call number; with `cpu` (a
    reading of CPU seconds per part of the machine), what each part used over the series."""
    series = Series(name, concurrency)
    before = cpu() if cpu is not None else {}
    numbers = iter(range(count))

    async def client() -> None:
        for number in numbers:
            started = time.perf_counter()
            try:
                status = await call(number)
            except (TimeoutError, httpx.HTTPError, OSError) as exc:
                status = type(exc).__name__
            series.latencies_ms.append((time.perf_counter() - started) * 1000)
            series.statuses[status] += 1
            if status not in expect:
                series.errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    series.elapsed_s = time.perf_counter() - started
    if cpu is not None:
        after = cpu()
        for key, seconds in after.items():  # `part:pid` readings add up to their part
            part = key.split(":", 1)[0]
            series.cpu_s[part] = series.cpu_s.get(part, 0.0) + max(0.0, seconds - before.get(key, 0.0))
    print(f"  {series.line()}", flush=True)
    return series


async def run_while(name: str, call: Call, until: asyncio.Future, *, pause_s: float = 0.05, max_calls: int = 20_000,
                    expect: frozenset[int] = frozenset({200})) -> Series:
    """One client calling in a loop (with a short pause) until `until` is done: reads measured
    while something else (an import) runs."""
    series = Series(name, 1)
    started = time.perf_counter()
    number = 0
    while not until.done() and number < max_calls:
        t0 = time.perf_counter()
        try:
            status = await call(number)
        except (TimeoutError, httpx.HTTPError, OSError) as exc:
            status = type(exc).__name__
        series.latencies_ms.append((time.perf_counter() - t0) * 1000)
        series.statuses[status] += 1
        if status not in expect:
            series.errors += 1
        number += 1
        await asyncio.sleep(pause_s)
    series.elapsed_s = time.perf_counter() - started
    print(f"  {series.line()}", flush=True)
    return series
