"""A rotation proposal for a Beijing-size district (issue 14): the time from `POST
/districts/{code}/rotation-proposals` through the gateway until its job's result can be read.

A district this size (about 9,000 staff and 100 schools) is computed by a job on the queue: the
POST answers 202 with a Location, polled here every 0.2 s. The bar is 30 s end to end.

`python -m benchmarks.proposal` runs this part alone: one district of the Beijing-scale city is
loaded into a fresh platform (its schools, staff and rotations), and the proposal timed.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace

import httpx

from benchmarks.data import ACADEMIC_YEAR, AS_OF, Dataset, generate

BAR_S = 30.0
DEADLINE_S = 120.0
POLL_S = 0.2
DISTRICT_STAFF = 9_000  # "Beijing-size": the district closest to this many staff at scale 1


@dataclass
class ProposalTiming:
    district: str
    staff: int
    schools: int
    status_code: int = 0
    first_answer_s: float = 0.0
    total_s: float = 0.0
    status: str = "?"
    summary: dict = field(default_factory=dict)

    @property
    def met(self) -> bool:
        return self.status == "done" and self.total_s <= BAR_S


def pick_district(dataset: Dataset) -> tuple[str, int, int]:
    """(code, staff, schools) of the district with a staff count closest to a Beijing-size one."""
    staff = Counter(dataset.schools[m.school].district_code for m in dataset.staff)
    schools = Counter(s.district_code for s in dataset.schools)
    target = DISTRICT_STAFF * dataset.sizes.scale
    code = min(staff, key=lambda c: (abs(staff[c] - target), c))
    return code, staff[code], schools[code]


async def measure(client: httpx.AsyncClient, dataset: Dataset) -> ProposalTiming:
    code, staff, schools = pick_district(dataset)
    timing = ProposalTiming(code, staff, schools)
    print(f"  proposing rotations for {code} ({staff:,} staff, {schools} schools) …", flush=True)
    started = time.perf_counter()
    response = await client.post(f"/api/v1/districts/{code}/rotation-proposals",
                                 json={"academic_year": ACADEMIC_YEAR, "as_of": AS_OF.isoformat()})
    timing.first_answer_s = time.perf_counter() - started
    timing.status_code = response.status_code
    body = response.json() if response.headers.get("content-type", "").endswith("json") else {}
    location = response.headers.get("location")
    while body.get("status") == "running" and location and time.perf_counter() - started < DEADLINE_S:
        await asyncio.sleep(POLL_S)
        polled = await client.get(location)
        if polled.status_code == 200:
            body = polled.json()
    timing.total_s = time.perf_counter() - started
    timing.status = str(body.get("status") or body.get("title") or "error")
    result = body.get("result") or {}
    if result:
        timing.summary = {
            "moves": len(result["moves"]), "candidates": result["candidates"],
            "optimiser": result["optimiser"],
            "rate": (result["before"]["rotation_rate"], result["after"]["rotation_rate"],
                     result["rotation_rate"]["met"]),
            "share": (result["before"]["backbone_share"], result["after"]["backbone_share"],
                      result["backbone_share"]["met"]),
            "cv": {s: (result["before"][s]["cv"], result["after"][s]["cv"]) for s in ("primary", "junior")}}
    print(f"  proposal: HTTP {timing.status_code}, {timing.status} in {timing.total_s:.1f} s", flush=True)
    return timing


def lines(t: ProposalTiming) -> list[str]:
    """The report's section on the proposal."""
    out = ["## Rotation proposal", "",
           f"District {t.district} ({t.staff:,} staff, {t.schools} schools): `POST "
           f"/districts/{t.district}/rotation-proposals` answered HTTP {t.status_code} in {t.first_answer_s:.2f} s; "
           f"the proposal was `{t.status}` after **{t.total_s:.1f} s** end to end (bar {BAR_S:.0f} s).", ""]
    s = t.summary
    if s:
        o = s["optimiser"]
        gap = "—" if o["gap"] is None else f"{o['gap']:.4f}"
        out += [f"- {s['moves']:,} moves of {s['candidates']:,} staff who could move; optimiser {o['method']} "
                f"({o['status']}, gap {gap}, {o['seconds']:.1f} s of its {o['time_limit_seconds']:.0f} s limit).",
                f"- Rotation rate {s['rate'][0]} → {s['rate'][1]} (met: {s['rate'][2]}); backbone share "
                f"{s['share'][0]} → {s['share'][1]} (met: {s['share'][2]}).",
                *[f"- CV {sec} {before} → {after}" for sec, (before, after) in s["cv"].items()], ""]
    return out


def one_district(dataset: Dataset, code: str) -> Dataset:
    """The dataset cut down to one district: its schools, their staff, and rotations among them."""
    school_index = {i: n for n, i in enumerate(i for i, s in enumerate(dataset.schools) if s.district_code == code)}
    staff_index = {i: n for n, i in enumerate(i for i, m in enumerate(dataset.staff) if m.school in school_index)}
    return replace(
        dataset, districts=[d for d in dataset.districts if d[0] == code],
        schools=[dataset.schools[i] for i in school_index],
        staff=[replace(dataset.staff[i], school=school_index[dataset.staff[i].school]) for i in staff_index],
        rotations=[replace(r, staff=staff_index[r.staff], to_school=school_index[r.to_school])
                   for r in dataset.rotations if r.staff in staff_index and r.to_school in school_index],
        pairings=[], studios=[], retirees=[], policies={k: v for k, v in dataset.policies.items() if k == code})


async def main() -> int:
    from benchmarks.load import Loader
    from benchmarks.platform import SECRET, start
    from services.common.auth import mint_token

    city = generate(1.0)
    code, _, _ = pick_district(city)
    dataset = one_district(city, code)
    platform = await start()
    token = mint_token(SECRET, sub="bench", role="city_admin", ttl_seconds=3600)
    try:
        async with httpx.AsyncClient(base_url=platform.url("gateway"), headers={"Authorization": f"Bearer {token}"},
                                     timeout=httpx.Timeout(600, connect=10)) as client:
            loader = Loader(client, platform, dataset, token=token)
            await loader.load_registries()
            await loader.load_rotations(500)
            timing = await measure(client, dataset)
    finally:
        platform.stop()
        shutil.rmtree(platform.work, ignore_errors=True)
    print("\n".join(lines(timing)))
    return 0 if timing.met else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
