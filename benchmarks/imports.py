"""`python -m benchmarks.imports --rows 250000`: how fast the bulk imports are, end to end.

Starts the platform as `spp up` does (real processes, the worker included; benchmarks/platform.py),
registers the districts and schools, then times, each from the first byte uploaded to the job's
report saying `completed`:

1. a staff import of `--rows` new staff (rotation, by staff_no),
2. the same file again (every row `unchanged`: nothing written),
3. the file with every row changed (every row an update),
4. a training-hours import of `--rows` new credits naming staff by id (training).

and then the floor: the same staff and training-hours files by plain `COPY` into an empty copy of
the table (its indexes and constraints, no change feed), with the ratio of each import to it.

Each line printed gives the rows per second, and the longest write transaction (one holding a
transaction id) seen on the database while the import ran, sampled from `pg_stat_activity`: an
import's write transaction holds back every service's change feed while it is open.
The uploads go through the gateway (`--via gateway`, the target's measure) or straight to the
owning service (`--via service`).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import shutil
import time
from dataclasses import dataclass
from datetime import date, timedelta

import asyncpg
import httpx

from benchmarks.data import BACKBONE, CREDIT_HOURS, CREDIT_SOURCES, SUBJECTS, Sizes, _name, _schools, _weighted
from benchmarks.platform import SECRET, Platform, start
from services.common.auth import mint_token
from services.common.seed import BEIJING_DISTRICTS

CSV = {"Content-Type": "text/csv"}
POLL_SECONDS = 0.1
DEADLINE_SECONDS = 1800.0
SAMPLE_SECONDS = 0.05
SEED = 20250301


@dataclass
class Timing:
    name: str
    rows: int
    seconds: float
    status: str
    inserted: int
    updated: int
    rejected: int
    longest_write_s: float

    unchanged: int = 0

    def line(self) -> str:
        return (f"{self.name}: {self.rows} rows in {self.seconds:.2f} s = {self.rows / self.seconds:,.0f} rows/s "
                f"({self.status}: {self.inserted} inserted, {self.updated} updated, {self.unchanged} unchanged, "
                f"{self.rejected} rejected; "
                f"longest write transaction {self.longest_write_s:.2f} s)")


def schools_csv(schools: list) -> bytes:
    lines = ["code,name,district_code,stage,locality,primary_enrollment,junior_enrollment,senior_enrollment"]
    lines += [f"{s.code},{s.name},{s.district_code},{s.stage},{s.locality},{s.primary},{s.junior},{s.senior}"
              for s in schools]
    return ("\n".join(lines) + "\n").encode()


def staff_csv(rng: random.Random, schools: list, rows: int, name_suffix: str = "") -> bytes:
    lines = ["staff_no,name,home_school_code,role,section,subject,backbone_level,in_post_since,retirement_date"]
    first, days = date(1992, 9, 1), (date(2024, 9, 1) - date(1992, 9, 1)).days
    for i in range(rows):
        school = schools[i % len(schools)]
        retirement = (date(2024, 7, 1) + timedelta(days=rng.randrange(6000))).isoformat() if rng.random() < 0.18 else ""
        section = "senior" if school.senior and not school.primary else "junior" if school.junior else "primary"
        role = "teacher" if i % 25 else "middle_manager"
        lines.append(f"B{i + 1:07d},{_name(rng)}{name_suffix},{school.code},{role},"
                     f"{section},{rng.choice(SUBJECTS)},{_weighted(rng, BACKBONE)},"
                     f"{(first + timedelta(days=rng.randrange(days))).isoformat()},{retirement}")
    return ("\n".join(lines) + "\n").encode()


def credits_csv(rng: random.Random, staff_ids: list[str], rows: int) -> bytes:
    lines = ["staff_id,hours,earned_on,source,reference"]
    first, days = date(2018, 1, 1), (date(2025, 6, 30) - date(2018, 1, 1)).days
    hours = rng.choices([h for h, _ in CREDIT_HOURS], weights=[w for _, w in CREDIT_HOURS], k=rows)
    sources = rng.choices([s for s, _ in CREDIT_SOURCES], weights=[w for _, w in CREDIT_SOURCES], k=rows)
    for i in range(rows):
        lines.append(f"{staff_ids[rng.randrange(len(staff_ids))]},{hours[i]},"
                     f"{(first + timedelta(days=rng.randrange(days))).isoformat()},{sources[i]},BI{i:09d}")
    return ("\n".join(lines) + "\n").encode()


async def longest_write(dsn: str, stop: asyncio.Event) -> float:
    """The age of the oldest transaction holding a transaction id, sampled until `stop`."""
    conn = await asyncpg.connect(dsn)
    longest = 0.0
    try:
        while not stop.is_set():
            age = await conn.fetchval(
                "SELECT COALESCE(max(EXTRACT(epoch FROM clock_timestamp() - xact_start)), 0) "
                "FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()")
            longest = max(longest, float(age))
            try:
                await asyncio.wait_for(stop.wait(), SAMPLE_SECONDS)
            except TimeoutError:
                pass
    finally:
        await conn.close()
    return longest


async def timed_import(client: httpx.AsyncClient, platform: Platform, name: str, path: str, body: bytes,
                       rows: int, prefix: str = "/v1") -> Timing:
    stop = asyncio.Event()
    sampler = asyncio.create_task(longest_write(platform.dsn(), stop))
    started = time.perf_counter()
    response = await client.post(prefix + path, content=body, headers=CSV)
    report = response.json()
    if response.status_code not in (200, 202):
        raise SystemExit(f"{name}: {response.status_code} {response.text[:500]}")
    location = response.headers["location"].replace("/api/v1", prefix, 1)
    deadline = time.monotonic() + DEADLINE_SECONDS
    while report.get("status") == "running" and time.monotonic() < deadline:
        await asyncio.sleep(POLL_SECONDS)
        report = (await client.get(location)).json()
    seconds = time.perf_counter() - started
    stop.set()
    timing = Timing(name, rows, seconds, report.get("status", "?"), report.get("inserted", 0),
                    report.get("updated", 0), report.get("rejected_rows", 0), await sampler,
                    report.get("unchanged", 0))
    if timing.status != "completed" or timing.rejected:
        raise SystemExit(f"{name}: {timing.line()}; errors {report.get('errors', [])[:3]} {report.get('detail')}")
    return timing


async def wait_for_directory(dsn: str, table: str, rows: int) -> None:
    """A read model (rotation's school directory, training's staff directory) catches up from its
    owner's change feed, as it has in a platform that has run for a while."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while await conn.fetchval(f"SELECT count(*) FROM {table}") < rows:
            if time.monotonic() > deadline:
                raise SystemExit(f"{table} did not catch up")
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def copy_floor(dsn: str, table: str, body: bytes, columns: list[str], rows: int, prepare: str = "") -> Timing:
    """The file by plain COPY into an empty copy of `table` (its indexes, checks and defaults; an
    id drawn by the database, no change feed, no validation): what the import is compared with."""
    conn = await asyncpg.connect(dsn)
    floor = f"bench_floor_{table.split('.')[1]}"
    try:
        await conn.execute(f"DROP TABLE IF EXISTS public.{floor}; "
                           f"CREATE TABLE public.{floor} (LIKE {table} INCLUDING ALL); "
                           f"ALTER TABLE public.{floor} ALTER COLUMN id SET DEFAULT gen_random_uuid(); {prepare}")
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_to_table(floor, schema_name="public", source=io.BytesIO(body), columns=columns,
                                     format="csv", header=True)
        seconds = time.perf_counter() - started
        await conn.execute(f"DROP TABLE public.{floor}")
    finally:
        await conn.close()
    return Timing(f"floor: COPY into {table}", rows, seconds, "completed", rows, 0, 0, 0.0)


async def main(rows: int, schools_count: int, via: str) -> int:
    rng = random.Random(SEED)
    schools = _schools(rng, Sizes(scale=1.0, schools=schools_count, staff=rows, rotations=0, credits=0,
                                  pairings=0, studios=0, credit_file_rows=0))
    staff_body = staff_csv(rng, schools, rows)
    changed_body = staff_csv(random.Random(SEED + 1), schools, rows, name_suffix="甲")
    print(f"starting the platform ({rows} rows a file) …", flush=True)
    platform = await start()
    token = mint_token(SECRET, sub="bench", role="city_admin", ttl_seconds=3600)
    auth = {"Authorization": f"Bearer {token}"}
    timeout = httpx.Timeout(600, connect=10)
    results: list[Timing] = []
    try:
        async with (httpx.AsyncClient(base_url=platform.url("partnership"), headers=auth, timeout=timeout) as p,
                    httpx.AsyncClient(base_url=platform.url("rotation"), headers=auth, timeout=timeout) as r,
                    httpx.AsyncClient(base_url=platform.url("training"), headers=auth, timeout=timeout) as t,
                    httpx.AsyncClient(base_url=platform.url("gateway"), headers=auth, timeout=timeout) as g):
            prefix = "/api/v1" if via == "gateway" else "/v1"
            if via == "gateway":
                r = t = g
            for code, district_name in BEIJING_DISTRICTS:
                answer = await p.post("/v1/districts", json={"code": code, "name": district_name})
                if answer.status_code != 201:
                    raise SystemExit(f"district {code}: {answer.status_code} {answer.text[:300]}")
            registry = await timed_import(p, platform, "schools", "/imports/schools", schools_csv(schools),
                                          len(schools))
            print("  " + registry.line(), flush=True)
            await wait_for_directory(platform.dsn(), "rotation.school_directory", len(schools))
            for name, body in (("staff (new)", staff_body), ("staff (same file again)", staff_body),
                               ("staff (every row changed)", changed_body)):
                results.append(await timed_import(r, platform, name, "/imports/staff", body, rows, prefix))
                print("  " + results[-1].line(), flush=True)
            conn = await asyncpg.connect(platform.dsn())
            try:
                ids = [str(i) for i in await conn.fetchval("SELECT array_agg(id ORDER BY staff_no) "
                                                           "FROM rotation.staff")]
            finally:
                await conn.close()
            await wait_for_directory(platform.dsn(), "training.staff_directory", rows)
            credits = credits_csv(rng, ids, rows)
            results.append(await timed_import(t, platform, "training hours (new)", "/imports/training-hours",
                                              credits, rows, prefix))
            print("  " + results[-1].line(), flush=True)
        staff_floor = await copy_floor(
            platform.dsn(), "rotation.staff", staff_body, ["staff_no", "name", "home_school_code", "role", "section",
                                                           "subject", "backbone_level", "in_post_since",
                                                           "retirement_date"], rows,
            "ALTER TABLE public.bench_floor_staff ALTER COLUMN home_district_code DROP NOT NULL")
        hours_floor = await copy_floor(platform.dsn(), "training.training_hours", credits,
                                       ["staff_id", "hours", "earned_on", "source", "reference"], rows)
        for floor, imported in ((staff_floor, results[0]), (hours_floor, results[-1])):
            print(f"  {floor.line()}; the import ({imported.name}) runs at "
                  f"{floor.seconds / imported.seconds:.2f} of it", flush=True)
    finally:
        platform.stop()
        shutil.rmtree(platform.work, ignore_errors=True)
    return 0


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=250_000, help="rows in each staff and training-hours file")
    parser.add_argument("--schools", type=int, default=1_700, help="schools the staff are spread over")
    parser.add_argument("--via", choices=("gateway", "service"), default="gateway",
                        help="upload through the gateway (the target's measure) or straight to the service")
    options = parser.parse_args()
    return asyncio.run(main(options.rows, options.schools, options.via))


if __name__ == "__main__":
    raise SystemExit(cli())
