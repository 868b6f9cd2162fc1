"""The markdown report of a benchmark run (docs/benchmarks.md, or `SPP_BENCH_OUT`)."""

from __future__ import annotations

import os
import platform as host
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.data import ACADEMIC_YEAR, AS_OF, Dataset
from benchmarks.load import ImportTiming, LoadReport
from benchmarks.measure import Series


@dataclass
class Results:
    dataset: Dataset
    generate_s: float
    render_s: float
    load: LoadReport
    series: dict[str, Series] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)
    compared: list[str] = field(default_factory=list)  # what the equality check covered
    floor_plan: list[str] = field(default_factory=list)  # EXPLAIN problems of the floor's SQL (none: a real floor)
    memory: dict[str, dict[str, float]] = field(default_factory=dict)
    processes: tuple[str, ...] = ()
    hours_key: str = "staff_id"
    proposal: Any = None  # benchmarks.proposal.ProposalTiming
    import_floors: dict[str, float] = field(default_factory=dict)  # kind -> rows/s of a plain COPY of its file


@dataclass(frozen=True)
class Target:
    name: str
    bar: str
    measured: str
    met: bool | None  # None: could not be measured


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _imports(load: LoadReport, kind: str) -> list[ImportTiming]:
    return [i for i in load.imports if i.kind == kind]


def _rate(timings: list[ImportTiming]) -> float:
    seconds = sum(t.total_s for t in timings)
    return sum(t.rows for t in timings) / seconds if seconds else 0.0


def targets(r: Results) -> list[Target]:
    s = r.series
    out: list[Target] = []

    def add(name: str, bar: str, value: float | None, fmt: str, ok: bool | None) -> None:
        out.append(Target(name, bar, "—" if value is None else fmt.format(value), ok))

    d1, d16, c1 = s.get("district_1"), s.get("district_16"), s.get("city_1")
    f1, f16, fc1 = s.get("district_1_fresh"), s.get("district_16_fresh"), s.get("city_1_fresh")
    fd, fc = s.get("floor_district"), s.get("floor_city")
    # Against the floor, which keeps nothing: the overview with every figure computed afresh.
    for name, fresh, kept, base in (("district overview p50 vs plain SQL", f1, d1, fd),
                                    ("city overview p50 vs plain SQL", fc1, c1, fc)):
        if fresh and base:
            x = _ratio(fresh.p50, base.p50)
            also = f"; {kept.p50:.0f} ms with kept answers" if kept else ""
            add(name, "≤ 3× floor", x, "{:.1f}× (" + f"{fresh.p50:.0f} ms computed afresh vs {base.p50:.0f} ms{also})",
                x <= 3 and fresh.errors == 0)
    if d1 and d16:
        x = _ratio(d16.throughput, d1.throughput)
        also = (f"; computed afresh {_ratio(f16.throughput, f1.throughput):.2f}× "
                f"({f16.throughput:.1f}/s vs {f1.throughput:.1f}/s)") if f1 and f16 else ""
        if d1.cores_busy and d16.cores_busy:
            also += (f"; cores busy: {d1.cores_busy:.2f} of {os.cpu_count() or 1} with one client, "
                     f"{d16.cores_busy:.2f} with {d16.concurrency}")
        add("district overview, 16 clients vs 1", "≥ 1.5× throughput", x,
            "{:.2f}× (" + f"{d16.throughput:.1f}/s vs {d1.throughput:.1f}/s{also})", x >= 1.5 and d16.errors == 0)
    for kind in ("staff", "training-hours"):
        timings = _imports(r.load, kind)
        if timings:
            rate = _rate(timings)
            clean = all(t.status == "completed" and not t.rejected and t.via == "gateway" for t in timings)
            copy = r.import_floors.get(kind)
            also = (f" (plain COPY of the same kind of file into an empty copy of the table: {copy:,.0f} rows/s; "
                    f"the import runs at {rate / copy:.2f} of it)") if copy else ""
            add(f"{kind} import, end to end", "≥ 50,000 rows/s", rate, "{:,.0f} rows/s" + also,
                rate >= 50_000 and clean)
    hours = _imports(r.load, "training-hours")
    if hours:
        worst = max(hours, key=lambda t: t.first_answer_s)
        ok = worst.first_answer_s <= 2 and worst.status_code in (200, 202)
        add("training-hours import, time to first answer", "≤ 2 s", worst.first_answer_s,
            "{:.2f} s (" + f"{worst.rows:,} rows, {worst.size_bytes / 1e6:.1f} MB, HTTP {worst.status_code})", ok)
    during = s.get("reads_during_import")
    if during:
        add("read on the importing service during an import", "p99 ≤ 300 ms", during.p99, "{:.0f} ms",
            during.p99 <= 300 and during.errors == 0)
    gw, direct = s.get("gateway_get"), s.get("direct_get")
    if gw and direct:
        x = _ratio(gw.throughput, direct.throughput)
        add("simple GET through the gateway vs direct", "≥ 1/1.5 (0.67) of direct", x,
            "{:.2f} (" + f"{gw.throughput:.0f}/s vs {direct.throughput:.0f}/s)", x >= 1 / 1.5 and gw.errors == 0)
    if r.proposal is not None:
        p = r.proposal
        add(f"rotation proposal, district of {p.staff:,} staff and {p.schools} schools", "≤ 30 s (a job)",
            p.total_s, "{:.1f} s (" + f"{p.status}, HTTP {p.status_code})", p.met)
    out.append(Target("platform figures equal plain SQL", "no mismatch",
                      f"{len(r.mismatches)} mismatches over {len(r.compared)} district answers",
                      not r.mismatches and bool(r.compared)))
    return out


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return host.processor() or host.machine()


def _mem_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB RAM"
    except OSError:
        pass
    return "RAM unknown"


def render(r: Results) -> str:
    d = r.dataset
    counts = d.counts()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    mark = {True: "met", False: "**not met**", None: "not measured"}
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` (`benchmarks/run.py`) on {when}. Machine: {os.cpu_count()} cores ({_cpu()}), "
        f"{_mem_total()}, {host.system()} {host.release()}, Python {sys.version.split()[0]}. The embedded "
        f"PostgreSQL and the processes {', '.join(r.processes)} run on loopback on the same machine as the load "
        "generator, so every figure includes the client's own cost.",
        "",
        f"Scale **{d.sizes.scale:g}** (`SPP_BENCH_SCALE`; 1.0 is a Beijing-scale city). Figures are for "
        f"academic year {ACADEMIC_YEAR} on {AS_OF.isoformat()}.",
        "",
        "## Targets",
        "",
        "| target | bar | measured | |",
        "|---|---|---|---|",
        *[f"| {t.name} | {t.bar} | {t.measured} | {mark[t.met]} |" for t in targets(r)],
        "",
        "## Data",
        "",
        "| records | count |",
        "|---|---:|",
        *[f"| {name} | {value:,} |" for name, value in counts.items()],
        "",
        f"Generated deterministically (seeded) in {r.generate_s:.1f} s; files rendered in {r.render_s:.1f} s. "
        f"Training-hours rows name staff by `{r.hours_key}`.",
        "",
        "Rotations were loaded: " + "; ".join(f"{n:,} {how}" for how, n in r.load.rotations_via.items()) + ".",
        "",
        *[f"- {note}" for note in r.load.notes],
        *([""] if r.load.notes else []),
        "## Loading (through the gateway unless said otherwise)",
        "",
        "| step | seconds |",
        "|---|---:|",
        *[f"| {name} | {sec:.1f} |" for name, sec in r.load.steps.items()],
        "",
        "| import | rows | MB | first answer | HTTP | end to end | rows/s | status | inserted | rejected | via |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|",
        *[f"| {t.kind} | {t.rows:,} | {t.size_bytes / 1e6:.1f} | {t.first_answer_s:.2f} s | {t.status_code} | "
          f"{t.total_s:.1f} s | {t.rows_per_s:,.0f} | {t.status} | {t.inserted:,} | {t.rejected:,} | {t.via} |"
          for t in r.load.imports],
        "",
    ]
    if r.load.retried:
        lines += ["Calls retried after a 503 while loading (the upstream was busy): "
                  + ", ".join(f"{k} {v}" for k, v in sorted(r.load.retried.items())) + ".", ""]
    if r.load.errors:
        lines += ["Load errors (unexpected answers while loading):", "",
                  *[f"- {k}: {v}" for k, v in sorted(r.load.errors.items())],
                  *[f"- sample: `{s}`" for s in r.load.samples], ""]
    lines += [
        "## Requests",
        "",
        "| series | calls | clients | per second | p50 ms | p99 ms | errors | statuses |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        *[f"| {s.name} | {s.count} | {s.concurrency} | {s.throughput:.1f} | {s.p50:.1f} | {s.p99:.1f} | {s.errors} | "
          f"{', '.join(f'{k}: {v}' for k, v in sorted(s.statuses.items(), key=str))} |" for s in r.series.values()],
        "",
        "Every service keeps its figure answers while its change feed and its read models' cursors say "
        "nothing they read has changed (`services/common/answer_cache.py`): a plain call after the warm-up is "
        "answered from kept answers, each checked by one index probe per service. The `no-cache` series send "
        "`Cache-Control: no-cache`, which the gateway passes on, so every figure is computed afresh: the cost "
        "right after a write, and the fair comparison with the floor, which keeps nothing.",
        "",
        "The floor is the same figures computed by four plain SQL statements on one connection (one after the "
        "other) against the services' tables in the same PostgreSQL (`benchmarks/floor.py`), the fastest such "
        "SQL we know, each statement planned for the values it runs with: EXPLAIN "
        + ("shows its completion summing each person's window by an index-only scan of "
           "`ix_training_hours_staff_window`, as the platform's does: a probe per person for one district, "
           "one pass in index order under a group aggregate for all of them."
           if not r.floor_plan else "found: " + "; ".join(r.floor_plan)),
        "",
        "The simple GETs: two httpx clients made alike (8 at a time, fresh connections, both warmed), direct and "
        "through the gateway in alternating halves; the load generator shares the 2 cores and costs the same CPU "
        "a call in both series.",
        "",
        *_against_floor(r),
        *_cpu_table(r),
        "## Figures: platform against plain SQL",
        "",
        f"Compared: {', '.join(r.compared) or 'nothing'}.",
        "",
    ]
    if r.mismatches:
        lines += ["**Mismatches (bugs to report):**", "", *[f"- {m}" for m in r.mismatches], ""]
    else:
        lines += ["Every compared figure is equal.", ""]
    if r.proposal is not None:
        from benchmarks.proposal import lines as proposal_lines

        lines += proposal_lines(r.proposal)
    lines += [
        "## Memory after the run",
        "",
        "| process | RSS MiB | PSS MiB | processes |",
        "|---|---:|---:|---:|",
        *[f"| {name} | {m['rss_mib']:.0f} | {m['pss_mib']:.0f} | {m['processes']:.0f} |" if "pss_mib" in m
          else f"| {name} | {m['rss_mib']:.0f} | | {m['processes']:.0f} |" for name, m in r.memory.items()],
        "",
        "PostgreSQL's RSS counts its shared buffers once per backend; PSS splits shared pages between processes.",
        "",
    ]
    return "\n".join(lines)


def _against_floor(r: Results) -> list[str]:
    rows = []
    for label, platform_key, floor_key in (("district overview, 1 client, computed afresh", "district_1_fresh",
                                            "floor_district"),
                                           ("district overview, 1 client, kept answers", "district_1",
                                            "floor_district"),
                                           ("city overview, 1 client, computed afresh", "city_1_fresh", "floor_city"),
                                           ("city overview, 1 client, kept answers", "city_1", "floor_city")):
        mine, base = r.series.get(platform_key), r.series.get(floor_key)
        if mine and base:
            rows.append(f"| {label} | {mine.p50:.1f} | {base.p50:.1f} | {_ratio(mine.p50, base.p50):.1f}× | "
                        f"{mine.p99:.1f} | {base.p99:.1f} | {_ratio(mine.p99, base.p99):.1f}× |")
    if not rows:
        return []
    return ["| view | platform p50 ms | SQL p50 ms | ratio | platform p99 ms | SQL p99 ms | ratio |",
            "|---|---:|---:|---:|---:|---:|---:|", *rows, ""]


def _cpu_table(r: Results) -> list[str]:
    """CPU milliseconds a call by part of the machine, for the series whose CPU was read."""
    measured = [s for s in r.series.values() if s.cpu_s and s.count]
    if not measured:
        return []
    parts = sorted({part for s in measured for part in s.cpu_s}, key=lambda p: (p == "load generator", p))
    return ["## Where the CPU went",
            "",
            "CPU time each part of the machine used over a series (utime + stime from /proc), per call, and the "
            "average number of cores the series kept busy (every part summed, over its wall time).",
            "",
            "| series | " + " | ".join(parts) + " | all, ms a call | cores busy |",
            "|---|" + "---:|" * (len(parts) + 2),
            *[f"| {s.name} | " + " | ".join(f"{1000 * s.cpu_s.get(part, 0.0) / s.count:.2f}" for part in parts)
              + f" | {1000 * sum(s.cpu_s.values()) / s.count:.2f} | {s.cores_busy:.2f} |" for s in measured],
            ""]


def write(r: Results, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(r), encoding="utf-8")
    print(f"report written to {path}")
