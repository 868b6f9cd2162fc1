"""`make bench`: a Beijing-scale city on the whole platform, and what its main calls cost.

1. Generate the city (`benchmarks/data.py`, seeded; `SPP_BENCH_SCALE` multiplies every size).
2. Start the platform as `spp up` does (`benchmarks/platform.py`) and load the city through the
   gateway's public API (`benchmarks/load.py`); measure the imports on the way, and a read on the
   training service while its last training-hours import runs.
3. Measure the district overview (1 and 16 clients), the city overview (each with the services'
   kept answers, and with `Cache-Control: no-cache`: every figure computed afresh), a simple GET through the
   gateway and directly, and the same figures by plain SQL (the floor, `benchmarks/floor.py`);
   check that the platform's figures equal the floor's; time a rotation proposal for a
   Beijing-size district (`benchmarks/proposal.py`).
4. Write the report (`docs/benchmarks.md`, or `SPP_BENCH_OUT`) with the targets met or not.

Environment: `SPP_BENCH_SCALE` (1.0), `SPP_BENCH_OUT` (docs/benchmarks.md), `SPP_BENCH_HOURS_KEY`
(`staff_id` or `staff_no`: how training-hours rows name staff), `SPP_BENCH_API_ROTATIONS` (500:
rotations sent through `POST /rotations` when the platform has no rotations import; the rest are
copied into the table directly, and the report says so). Traffic stays on 127.0.0.1; every series
has a fixed number of calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import time
from pathlib import Path

import asyncpg
import httpx

from benchmarks import floor, measure, proposal, report
from benchmarks.data import ACADEMIC_YEAR, AS_OF, generate
from benchmarks.imports import copy_floor
from benchmarks.load import Loader
from benchmarks.platform import SECRET, Platform, cpu, memory, start
from services.common.auth import mint_token

ROOT = Path(__file__).resolve().parent.parent
STAFF_COLUMNS = ["staff_no", "name", "home_school_code", "role", "section", "subject", "backbone_level",
                 "in_post_since", "retirement_date"]
CLIENTS = 16
PARAMS = {"academic_year": str(ACADEMIC_YEAR), "as_of": AS_OF.isoformat()}
PERIOD = floor.Period(AS_OF, AS_OF.replace(year=ACADEMIC_YEAR, month=9, day=1),
                      AS_OF.replace(year=ACADEMIC_YEAR + 1, month=8, day=31))
# Calls per series (fixed, whatever the scale).
DISTRICT_ONE, DISTRICT_MANY, CITY_ONE, FLOOR_DISTRICT, FLOOR_CITY, SIMPLE_GETS, QUIET_READS = (
    48, 192, 10, 48, 10, 400, 100)
FRESH = {"Cache-Control": "no-cache"}  # figures computed afresh, not kept answers
EQUALITY_DISTRICTS = ("110101", "110105", "110108", "110119")


def settings_from_env() -> dict:
    key = os.environ.get("SPP_BENCH_HOURS_KEY", "staff_id")
    if key not in ("staff_id", "staff_no"):
        raise SystemExit("SPP_BENCH_HOURS_KEY is staff_id or staff_no")
    return {"scale": float(os.environ.get("SPP_BENCH_SCALE", "1.0")),
            "out": Path(os.environ.get("SPP_BENCH_OUT", ROOT / "docs" / "benchmarks.md")),
            "hours_key": key,
            "api_rotations": int(os.environ.get("SPP_BENCH_API_ROTATIONS", "500"))}


async def main() -> int:
    options = settings_from_env()
    print(f"generating the city at scale {options['scale']:g} …", flush=True)
    started = time.perf_counter()
    dataset = generate(options["scale"])
    generate_s = time.perf_counter() - started
    print(f"  {dataset.counts()} in {generate_s:.1f} s", flush=True)

    print("starting the platform …", flush=True)
    platform = await start()
    token = mint_token(SECRET, sub="bench", role="city_admin", ttl_seconds=12 * 3600)
    auth = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=CLIENTS * 2, max_keepalive_connections=CLIENTS * 2)
    try:
        async with httpx.AsyncClient(base_url=platform.url("gateway"), headers=auth, limits=limits,
                                     timeout=httpx.Timeout(600, connect=10)) as client:
            print("loading through the gateway …", flush=True)
            loader = Loader(client, platform, dataset, token=token, hours_key=options["hours_key"])
            results = report.Results(dataset=dataset, generate_s=generate_s, render_s=0.0, load=loader.report,
                                     processes=tuple(platform.group.names), hours_key=options["hours_key"])
            await loader.load_registries()
            await loader.load_programmes()
            await loader.load_rotations(options["api_rotations"])
            rendered = time.perf_counter()
            files = loader.credit_files()
            results.render_s = time.perf_counter() - rendered
            for number, body in enumerate(files[:-1], start=1):
                await loader.load_credit_file(body, number)
            await reads_during_import(client, loader, files[-1], len(files), results)
            await loader.retire()
            await analyze(platform)
            results.import_floors = await import_floors(platform, dataset, files[0])
            print("measuring …", flush=True)
            await measure_all(client, platform, dataset, loader, results, auth)
            results.proposal = await proposal.measure(client, dataset)
        results.memory = memory(platform)
    finally:
        platform.stop()
        shutil.rmtree(platform.work, ignore_errors=True)
    report.write(results, options["out"])
    for target in report.targets(results):
        print(f"  [{'met' if target.met else 'NOT MET' if target.met is False else '?'}] {target.name}: "
              f"{target.measured} (bar {target.bar})")
    if results.mismatches:
        print("\n!!! FIGURES DIFFER BETWEEN THE PLATFORM AND PLAIN SQL:")
        for line in results.mismatches:
            print(f"!!!   {line}")
        return 1
    return 0


async def reads_during_import(client: httpx.AsyncClient, loader: Loader, body: bytes, number: int,
                              results: report.Results) -> None:
    """A read on the training service, quiet and then while its last training-hours file imports."""
    async def read(_: int) -> int:
        return (await client.get("/api/v1/studios", params={"limit": "20"})).status_code

    results.series["reads_quiet"] = await measure.run(
        "GET /studios?limit=20 (training), no import running", read, count=QUIET_READS, concurrency=1)
    task = asyncio.create_task(loader.load_credit_file(body, number))
    results.series["reads_during_import"] = await measure.run_while(
        "GET /studios?limit=20 (training) while a training-hours import runs", read, task)
    await task


async def import_floors(platform: Platform, dataset, credits: bytes) -> dict[str, float]:
    """Rows a second of a plain COPY of the staff file and of one training-hours file into an empty
    copy of their table (indexes, checks and defaults; no validation, no change feed): what the
    import bars are measured against on this machine."""
    staff = await copy_floor(platform.dsn(), "rotation.staff", dataset.staff_csv(), STAFF_COLUMNS, len(dataset.staff),
                             "ALTER TABLE public.bench_floor_staff ALTER COLUMN home_district_code DROP NOT NULL")
    rows = credits.count(b"\n") - 1
    hours = await copy_floor(platform.dsn(), "training.training_hours", credits,
                             ["staff_id", "hours", "earned_on", "source", "reference"], rows)
    floors = {"staff": staff.rows / staff.seconds, "training-hours": hours.rows / hours.seconds}
    print(f"  import floors (plain COPY, rows/s): {floors}", flush=True)
    return floors


async def analyze(platform: Platform) -> None:
    """Fresh planner statistics and visibility maps after the bulk load: what autovacuum would do a
    little later, done now so that it does not do it in the middle of a series (a core busy for
    seconds at scale 1), and so that every measurement sees the same tables. Before the visibility
    map was set, the floor's per-person ledger sums ran as bitmap heap scans (9.2 s against 0.9 s)."""
    conn = await asyncpg.connect(platform.dsn())
    try:
        await conn.execute("VACUUM (ANALYZE)")
    finally:
        await conn.close()


async def measure_all(client: httpx.AsyncClient, platform: Platform, dataset, loader: Loader,
                      results: report.Results, auth: dict[str, str]) -> None:
    codes = [code for code, _ in dataset.districts]
    series = results.series

    async def district(n: int) -> int:
        return (await client.get(f"/api/v1/districts/{codes[n % len(codes)]}/overview", params=PARAMS)).status_code

    async def city(_: int) -> int:
        return (await client.get("/api/v1/city/overview", params=PARAMS)).status_code

    # The same calls with every figure computed afresh (services/common/answer_cache.py): what an
    # overview costs right after a write, and what the floor, which keeps nothing, is fairly compared with.
    async def district_fresh(n: int) -> int:
        return (await client.get(f"/api/v1/districts/{codes[n % len(codes)]}/overview", params=PARAMS,
                                 headers=FRESH)).status_code

    async def city_fresh(_: int) -> int:
        return (await client.get("/api/v1/city/overview", params=PARAMS, headers=FRESH)).status_code

    def used() -> dict[str, float]:
        return cpu(platform)

    await measure.run("warm-up", district, count=len(codes), concurrency=4)
    await measure.run("warm-up", city, count=2, concurrency=1)
    series["district_1"] = await measure.run("GET /districts/{code}/overview, 1 client", district,
                                             count=DISTRICT_ONE, concurrency=1, cpu=used)
    series["district_16"] = await measure.run(f"GET /districts/{{code}}/overview, {CLIENTS} clients", district,
                                              count=DISTRICT_MANY, concurrency=CLIENTS, cpu=used)
    series["city_1"] = await measure.run("GET /city/overview, 1 client", city, count=CITY_ONE, concurrency=1, cpu=used)
    series["district_1_fresh"] = await measure.run("GET /districts/{code}/overview, no-cache, 1 client",
                                                   district_fresh, count=DISTRICT_ONE, concurrency=1, cpu=used)
    series["district_16_fresh"] = await measure.run(f"GET /districts/{{code}}/overview, no-cache, {CLIENTS} clients",
                                                    district_fresh, count=DISTRICT_MANY // 2, concurrency=CLIENTS,
                                                    cpu=used)
    series["city_1_fresh"] = await measure.run("GET /city/overview, no-cache, 1 client", city_fresh,
                                               count=CITY_ONE, concurrency=1, cpu=used)

    conn = await asyncpg.connect(platform.dsn())
    try:
        async def floor_district(n: int) -> int:
            await floor.figures(conn, codes[n % len(codes)], PERIOD)
            return 200

        async def floor_city(_: int) -> int:
            await floor.figures(conn, None, PERIOD)
            return 200

        results.floor_plan = await floor.check_plans(conn, codes[0], PERIOD)
        for problem in results.floor_plan:
            print(f"  !!! {problem}", flush=True)
        await measure.run("warm-up", floor_city, count=1, concurrency=1)
        series["floor_district"] = await measure.run("floor: a district's figures by plain SQL", floor_district,
                                                     count=FLOOR_DISTRICT, concurrency=1)
        series["floor_city"] = await measure.run("floor: every district's figures by plain SQL", floor_city,
                                                 count=FLOOR_CITY, concurrency=1)
        await check_figures(client, conn, codes, results)
    finally:
        await conn.close()

    rng = random.Random(7)
    ids = [loader.staff_ids[i] for i in rng.sample(range(len(loader.staff_ids)), 200)]

    series["direct_get"], series["gateway_get"] = await simple_gets(platform, auth, ids)


async def simple_gets(platform: Platform, auth: dict[str, str], ids: list[str]) -> tuple[measure.Series, ...]:
    """GET /staff/{id} on rotation directly and through the gateway, from two clients made alike
    (httpx, the same limits, fresh connections, both warmed), in alternating halves so that a
    neighbour's load (another process, autovacuum) falls on both series alike. Each client costs
    the same CPU a call in both series (0.75 ms, measured from /proc); it shares the 2 cores, so
    the ratio is of the whole machine's work a call, the client's included."""
    made = {"direct": (platform.url("rotation"), "/v1/staff/"), "gateway": (platform.url("gateway"), "/api/v1/staff/")}
    merged = {label: measure.Series(f"GET {prefix}{{id}} " + ("directly on rotation" if label == "direct"
                                                               else "through the gateway"), 8)
              for label, (_, prefix) in made.items()}
    async with contextlib.AsyncExitStack() as stack:
        calls = {}
        for label, (url, prefix) in made.items():
            client = await stack.enter_async_context(httpx.AsyncClient(
                base_url=url, headers=auth, timeout=60, limits=httpx.Limits(max_connections=CLIENTS)))

            async def call(n: int, client: httpx.AsyncClient = client, prefix: str = prefix) -> int:
                return (await client.get(f"{prefix}{ids[n % len(ids)]}")).status_code

            calls[label] = call
            await measure.run("warm-up", call, count=40, concurrency=8)
        for _ in range(2):
            for label, call in calls.items():
                half = await measure.run(merged[label].name, call, count=SIMPLE_GETS // 2, concurrency=8,
                                         cpu=lambda: cpu(platform))
                merged[label].latencies_ms += half.latencies_ms
                merged[label].statuses.update(half.statuses)
                merged[label].errors += half.errors
                merged[label].elapsed_s += half.elapsed_s
                for part, seconds in half.cpu_s.items():
                    merged[label].cpu_s[part] = merged[label].cpu_s.get(part, 0.0) + seconds
    for whole in merged.values():
        print(f"  {whole.line()}", flush=True)
    return merged["direct"], merged["gateway"]


async def check_figures(client: httpx.AsyncClient, conn: asyncpg.Connection, codes: list[str],
                        results: report.Results) -> None:
    """The platform's figures against the floor's: every district of the city overview, and a few
    district overviews (also against the floor's one-district statements)."""
    city_floor = await floor.figures(conn, None, PERIOD)
    city = await client.get("/api/v1/city/overview", params=PARAMS)
    if city.status_code != 200:
        results.mismatches.append(f"city overview answered {city.status_code}: {city.text[:200]}")
    else:
        rows = {row["code"]: row for row in city.json()["districts"]}
        for code in codes:
            if code not in rows:
                results.mismatches.append(f"{code}: missing from the city overview")
                continue
            results.mismatches += floor.compare(code, rows[code], city_floor[code])
        results.compared.append(f"city overview, all {len(codes)} districts")
    for code in EQUALITY_DISTRICTS:
        answer = await client.get(f"/api/v1/districts/{code}/overview", params=PARAMS)
        if answer.status_code != 200:
            results.mismatches.append(f"district overview {code} answered {answer.status_code}: {answer.text[:200]}")
            continue
        one = (await floor.figures(conn, code, PERIOD))[code]
        results.mismatches += [f"(district overview) {m}" for m in floor.compare(code, answer.json(), one)]
        if one != city_floor[code]:
            results.mismatches.append(f"{code}: the floor's one-district SQL differs from its all-districts SQL")
        results.compared.append(f"district overview {code}")


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
