"""Loading the generated city through the gateway's public API.

Registries and ledgers go through the bulk imports (`POST /api/v1/imports/{kind}`), which answer
200 with the report or 202 with a `Location` to poll; pairings, policies, studios and retirements
through their ordinary endpoints. Rotations use `POST /imports/rotations` when the platform has
that kind; otherwise a bounded number go through `POST /rotations` and its state actions, and the
rest are written by COPY straight into `rotation.rotations` — labelled as such in the report,
because that part did not go through the API.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from benchmarks.data import Dataset, Rotation
from benchmarks.platform import Platform

CSV = {"content-type": "text/csv"}
OWNER = {"schools": "partnership", "staff": "rotation", "training-hours": "training", "rotations": "rotation"}
FINISHED = {"completed", "failed", "rejected", "validated"}
LOAD_CONCURRENCY = 16
POLL_SECONDS = 0.1
RETRIES_503 = 4
IMPORT_DEADLINE = 1800.0  # seconds a single import may take before the harness gives up on it


@dataclass
class ImportTiming:
    kind: str
    rows: int
    size_bytes: int
    status_code: int
    first_answer_s: float
    total_s: float
    status: str
    inserted: int
    rejected: int
    via: str = "gateway"
    note: str = ""

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.total_s if self.total_s > 0 else 0.0


@dataclass
class LoadReport:
    imports: list[ImportTiming] = field(default_factory=list)
    steps: dict[str, float] = field(default_factory=dict)  # step -> seconds
    counts: dict[str, int] = field(default_factory=dict)
    errors: Counter = field(default_factory=Counter)  # "step: status" -> count
    retried: Counter = field(default_factory=Counter)  # step -> calls retried after a 503
    samples: list[str] = field(default_factory=list)  # a few problem bodies, for the reader
    rotations_via: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the reader must know about how data got in

    def error(self, step: str, response: httpx.Response | None, detail: str = "") -> None:
        status = response.status_code if response is not None else "exception"
        self.errors[f"{step}: {status}"] += 1
        if len(self.samples) < 12:
            body = response.text[:300] if response is not None else detail[:300]
            self.samples.append(f"{step} → {status}: {body}")


async def bounded(jobs: Iterable[Callable[[], Awaitable[None]]], concurrency: int = LOAD_CONCURRENCY) -> None:
    """Run the jobs with at most `concurrency` at a time."""
    queue = list(jobs)
    queue.reverse()

    async def worker() -> None:
        while queue:
            await queue.pop()()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


class Loader:
    def __init__(self, client: httpx.AsyncClient, platform: Platform, dataset: Dataset, *, token: str,
                 hours_key: str = "staff_id") -> None:
        self.client = client
        self.platform = platform
        self.data = dataset
        self.token = token
        self.hours_key = hours_key
        self.report = LoadReport()
        self.staff_ids: list[str] = []

    # Calls --------------------------------------------------------------------------------

    async def call(self, step: str, method: str, path: str, expect: tuple[int, ...], **kwargs: Any
                   ) -> httpx.Response | None:
        """One loading call. A 503 (an upstream busy with an import job, or its open circuit
        breaker) is retried a bounded number of times and counted; other surprises are errors."""
        for attempt in range(RETRIES_503 + 1):
            try:
                response = await self.client.request(method, f"/api/v1{path}", **kwargs)
            except httpx.HTTPError as exc:
                self.report.error(step, None, repr(exc))
                return None
            if response.status_code != 503 or attempt == RETRIES_503:
                break
            self.report.retried[step] += 1
            await asyncio.sleep(2 ** attempt)
        if response.status_code not in expect:
            self.report.error(step, response)
            return None
        return response

    async def import_file(self, kind: str, body: bytes, *, rows: int) -> ImportTiming:
        """POST one file; time from the first byte sent to the first answer and to the job's end.
        A 5xx from the gateway (an upstream timeout while the service reads a large file) is
        recorded, and the same file is then sent straight to the owning service (idempotent
        imports: nothing is written twice)."""
        started = time.perf_counter()
        try:
            response = await self.client.post(f"/api/v1/imports/{kind}", content=body, headers=CSV)
        except httpx.HTTPError as exc:
            response = None
            self.report.error(f"import {kind}", None, repr(exc))
        first = time.perf_counter() - started
        if response is not None and response.status_code in (200, 202):
            report = await self.wait(self.client, response, prefix="/api/v1")
            return self._timing(kind, rows, body, response.status_code, first, started, report, "gateway")
        if response is not None and response.status_code < 500:
            self.report.error(f"import {kind}", response)
            body_json = _json(response)
            return ImportTiming(kind, rows, len(body), response.status_code, first, time.perf_counter() - started,
                                str(body_json.get("import_status") or body_json.get("title") or "error"),
                                int(body_json.get("inserted") or 0), int(body_json.get("rejected_rows") or 0))
        if response is not None:
            self.report.error(f"import {kind}", response)
        status = response.status_code if response is not None else 0
        service = self.platform.url(OWNER[kind])
        async with httpx.AsyncClient(base_url=service, timeout=IMPORT_DEADLINE,
                                     headers={"Authorization": f"Bearer {self.token}"}) as direct:
            retry = await direct.post(f"/v1/imports/{kind}", content=body, headers=CSV)
            report = await self.wait(direct, retry, prefix="/v1") if retry.status_code in (200, 202) else _json(retry)
        timing = self._timing(kind, rows, body, status, first, started, report,
                              f"service directly (gateway answered {status or 'nothing'})")
        timing.note = f"direct retry answered {retry.status_code}"
        return timing

    def _timing(self, kind: str, rows: int, body: bytes, status_code: int, first: float, started: float,
                report: dict, via: str) -> ImportTiming:
        timing = ImportTiming(kind, rows, len(body), status_code, first, time.perf_counter() - started,
                              str(report.get("status", "?")), int(report.get("inserted") or 0),
                              int(report.get("rejected_rows") or 0), via)
        if timing.status != "completed" or timing.rejected:
            self.report.errors[f"import {kind}: {timing.status}, {timing.rejected} rejected"] += 1
            errors = report.get("errors") or []
            if errors and len(self.report.samples) < 12:
                self.report.samples.append(f"import {kind}: {errors[:3]}")
        return timing

    async def wait(self, client: httpx.AsyncClient, response: httpx.Response, *, prefix: str) -> dict:
        """The finished report: the inline one (200), or the job's, polled at its Location (202)."""
        body = _json(response)
        location = response.headers.get("location")
        deadline = time.monotonic() + IMPORT_DEADLINE
        while body.get("status") not in FINISHED and location and time.monotonic() < deadline:
            await asyncio.sleep(POLL_SECONDS)
            path = location if prefix == "/api/v1" else location.replace("/api/v1", prefix, 1)
            polled = await client.get(path)
            if polled.status_code == 200:
                body = polled.json()
        return body

    # The whole city -----------------------------------------------------------------------

    async def step(self, name: str, work: Awaitable[Any]) -> Any:
        started = time.perf_counter()
        result = await work
        self.report.steps[name] = time.perf_counter() - started
        print(f"  {name}: {self.report.steps[name]:.1f} s", flush=True)
        return result

    async def load_registries(self) -> None:
        """Districts, schools, staff (imports), then the staff ids the other records need."""
        d = self.data
        await self.step("districts (POST /districts)", bounded(
            [lambda c=c, n=n: self.call("districts", "POST", "/districts", (201, 409), json={"code": c, "name": n})
             for c, n in d.districts]))
        self.report.imports.append(await self.step(
            f"schools import ({len(d.schools)} rows)",
            self.import_file("schools", d.schools_csv(), rows=len(d.schools))))
        self.report.imports.append(await self.step(
            f"staff import ({len(d.staff)} rows)", self.import_file("staff", d.staff_csv(), rows=len(d.staff))))
        self.staff_ids = await self.lookup_staff_ids()

    async def lookup_staff_ids(self) -> list[str]:
        """staff_no → id, read by the harness from rotation.staff (a look-up, not a load)."""
        conn = await asyncpg.connect(self.platform.dsn())
        try:
            rows = await conn.fetch("SELECT staff_no, id::text AS id FROM rotation.staff")
        finally:
            await conn.close()
        by_no = {r["staff_no"]: r["id"] for r in rows}
        missing = [m.staff_no for m in self.data.staff if m.staff_no not in by_no]
        if missing:
            raise RuntimeError(f"{len(missing)} generated staff are not stored (first: {missing[:3]}); "
                               f"load errors: {dict(self.report.errors)} {self.report.samples}")
        return [by_no[m.staff_no] for m in self.data.staff]

    async def load_programmes(self) -> None:
        await self.step("rotation policies (PUT /rotation-policies)", bounded(
            [lambda c=c, p=p: self.call("policies", "PUT", f"/rotation-policies/{c}", (200,), json=p)
             for c, p in self.data.policies.items()]))
        await self.step(f"pairings and activities ({len(self.data.pairings)} pairings)",
                        bounded([lambda p=p: self._pairing(p) for p in self.data.pairings]))
        await self.step(f"studios, members, sessions, attendance ({len(self.data.studios)} studios)",
                        bounded([lambda s=s: self._studio(s) for s in self.data.studios]))

    async def _pairing(self, p) -> None:
        schools = self.data.schools
        created = await self.call("pairings", "POST", "/pairings", (201,), json={
            "lead_school_code": schools[p.lead].code, "partner_school_code": schools[p.partner].code,
            "program": "城乡学校手拉手结对帮扶", "start_date": p.start.isoformat(), "end_date": p.end.isoformat()})
        if created is None or p.status == "proposed":
            return
        pairing_id = created.json()["id"]
        if await self.call("pairings", "POST", f"/pairings/{pairing_id}/activate", (200,)) is None:
            return
        for kind, day, title, teachers, students in p.activities:
            await self.call("activities", "POST", f"/pairings/{pairing_id}/activities", (201,), json={
                "kind": kind, "date": day.isoformat(), "title": title, "teacher_participants": teachers,
                "student_participants": students})
        if p.status in ("suspended", "ended"):
            action = "suspend" if p.status == "suspended" else "end"
            await self.call("pairings", "POST", f"/pairings/{pairing_id}/{action}", (200,))

    async def _studio(self, s) -> None:
        ids = self.staff_ids
        created = await self.call("studios", "POST", "/studios", (201,), json={
            "name": f"{self.data.staff[s.host].name}名师工作室", "kind": s.kind, "host_staff_id": ids[s.host],
            "subject": s.subject, "district_code": s.district_code, "start_date": s.start.isoformat(),
            "end_date": s.end.isoformat(), "capacity": 10})
        if created is None:
            return
        studio_id = created.json()["id"]
        for member in s.members:
            await self.call("members", "POST", f"/studios/{studio_id}/members", (201,),
                            json={"staff_id": ids[member], "joined_on": s.start.isoformat()})
        for kind, title, starts_at, hours, attendees in s.sessions:
            session = await self.call("sessions", "POST", f"/studios/{studio_id}/sessions", (201,),
                                      json={"kind": kind, "title": title, "starts_at": starts_at, "hours": hours})
            if session is not None:
                await self.call("attendance", "PUT", f"/sessions/{session.json()['id']}/attendance", (200,),
                                json={"staff_ids": [ids[a] for a in attendees]})

    async def load_rotations(self, api_cap: int) -> None:
        """Through `POST /imports/rotations` when it exists; else `api_cap` through the API and
        the rest by COPY (not through the API)."""
        rotations = self.data.rotations
        probe = await self.step(f"rotations import ({len(rotations)} rows)", self.import_file(
            "rotations", self.data.rotations_csv(), rows=len(rotations)))
        if probe.status == "completed" and not probe.rejected:
            self.report.imports.append(probe)
            self.report.rotations_via = {"POST /imports/rotations": len(rotations)}
            return
        # Not there (404) or refused: not a load error, a note saying why the fallback was taken.
        for key in [k for k in self.report.errors if k.startswith("import rotations")]:
            del self.report.errors[key]
        why = [s for s in self.report.samples if s.startswith("import rotations")]
        self.report.samples = [s for s in self.report.samples if not s.startswith("import rotations")]
        note = (f"`POST /api/v1/imports/rotations` answered {probe.status_code} ({probe.status}); "
                f"{min(api_cap, len(rotations)):,} rotations went through `POST /rotations` and its state actions "
                f"instead, the other {max(0, len(rotations) - api_cap):,} by direct COPY (not through the API).")
        self.report.notes += [note, *(f"rotations import answer: `{s}`" for s in why[:2])]
        print(f"  {note}", flush=True)
        through_api, rest = rotations[:api_cap], rotations[api_cap:]
        await self.step(f"rotations through POST /rotations + actions ({len(through_api)})",
                        bounded([lambda r=r: self._rotation(r) for r in through_api]))
        if rest:
            await self.step(f"rotations by direct COPY, not through the API ({len(rest)})", self._copy_rotations(rest))
        self.report.rotations_via = {"POST /rotations + state actions": len(through_api),
                                     "direct COPY into rotation.rotations (not through the API)": len(rest)}

    async def _rotation(self, r: Rotation) -> None:
        created = await self.call("rotations", "POST", "/rotations", (201,), json={
            "staff_id": self.staff_ids[r.staff], "to_school_code": self.data.schools[r.to_school].code,
            "mode": r.mode, "start_date": r.start.isoformat(), "end_date": r.end.isoformat()})
        if created is None:
            return
        actions = {"planned": [], "approved": ["approve"], "active": ["approve", "activate"],
                   "completed": ["approve", "activate", "complete"], "withdrawn": ["withdraw"]}[r.status]
        for action in actions:
            if await self.call("rotations", "POST", f"/rotations/{created.json()['id']}/{action}", (200,)) is None:
                return

    async def _copy_rotations(self, rotations: list[Rotation]) -> None:
        staff, schools = self.data.staff, self.data.schools
        records = []
        for r in rotations:
            home = schools[staff[r.staff].school]
            target = schools[r.to_school]
            records.append((uuid.uuid4(), uuid.UUID(self.staff_ids[r.staff]), home.code, home.district_code,
                            target.code, target.district_code, r.mode, r.start, r.end, r.status, "bench-copy"))
        conn = await asyncpg.connect(self.platform.dsn())
        try:
            await conn.copy_records_to_table(
                "rotations", schema_name="rotation", records=records,
                columns=["id", "staff_id", "from_school_code", "from_district_code", "to_school_code",
                         "to_district_code", "mode", "start_date", "end_date", "status", "created_by"])
            await conn.execute("ANALYZE rotation.rotations")
        finally:
            await conn.close()

    def credit_files(self) -> list[bytes]:
        keys = self.staff_ids if self.hours_key == "staff_id" else [m.staff_no for m in self.data.staff]
        return self.data.credit_files(keys, self.hours_key)

    async def load_credit_file(self, body: bytes, number: int) -> ImportTiming:
        rows = body.count(b"\n") - 1
        timing = await self.step(f"training-hours import, file {number} ({rows} rows)",
                                 self.import_file("training-hours", body, rows=rows))
        self.report.imports.append(timing)
        return timing

    async def retire(self) -> None:
        """Staff whose retirement date has passed by AS_OF are retired (PATCH), last of all."""
        await self.step(f"retirements (PATCH /staff/{{id}}, {len(self.data.retirees)})", bounded(
            [lambda i=i: self.call("retirements", "PATCH", f"/staff/{self.staff_ids[i]}", (200,),
                                   json={"status": "retired"}) for i in self.data.retirees]))


def _json(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
