"""Rotation proposals (issue 14): the proposer against brute force, its constraints, its bars,
that it stores nothing until it becomes a plan, and large districts as jobs."""

from __future__ import annotations

import itertools
import random
from fractions import Fraction
from uuid import UUID

import httpx
import pytest

from services.common import cv as arithmetic
from services.rotation.proposals import figures
from services.rotation.proposals.greedy import greedy
from services.rotation.proposals.model import Candidate, Move, Problem, School
from services.rotation.proposals.optimiser import optimise
from tests.conftest import asgi, fetch
from tests.jobs import run_jobs
from tests.rotation import factories as f

D = "110105"
A, B, C, DJ, E = "11010501", "11010502", "11010503", "11010504", "11010505"
ENROL = {A: {"primary": 1000}, B: {"primary": 500}, C: {"primary": 500}, DJ: {"junior": 800},
         E: {"primary": 400, "junior": 400}}
PATH = f"/v1/districts/{D}/rotation-proposals"
BODY = {"academic_year": 2024, "as_of": "2024-09-01"}
OLD, NEW = "2010-09-01", "2021-09-01"  # eligible on 1 Sept 2024, and not yet


async def small_district(partnership, rotation) -> dict[str, dict]:
    """Five schools, 15 staff of whom 8 are eligible (the candidates)."""
    await f.district(partnership)
    await f.school(partnership, A, primary=1000)
    await f.school(partnership, B, primary=500)
    await f.school(partnership, C, primary=500)
    await f.school(partnership, DJ, stage="junior", junior=800)
    await f.school(partnership, E, stage="nine_year", primary=400, junior=400)
    people = {
        "a1": dict(home_school_code=A, backbone_level="municipal", in_post_since=OLD),
        "a2": dict(home_school_code=A, backbone_level="municipal", in_post_since=OLD),
        "a3": dict(home_school_code=A, backbone_level="district", in_post_since=OLD),
        "a4": dict(home_school_code=A, backbone_level="district", in_post_since=OLD),
        "a5": dict(home_school_code=A, in_post_since=OLD),
        "b1": dict(home_school_code=B, backbone_level="school", in_post_since=OLD, subject="语文"),
        "c1": dict(home_school_code=C, role="principal", backbone_level="municipal", in_post_since=OLD),
        "d1": dict(home_school_code=DJ, section="junior", backbone_level="district", in_post_since=OLD),
        "a6": dict(home_school_code=A, backbone_level="district", in_post_since=NEW),
        "c2": dict(home_school_code=C, backbone_level="district", in_post_since=NEW),
        "d2": dict(home_school_code=DJ, section="junior", backbone_level="district", in_post_since=NEW),
        "d3": dict(home_school_code=DJ, section="junior", backbone_level="district", in_post_since=NEW),
        "e1": dict(home_school_code=E, section="junior", backbone_level="district", in_post_since=NEW),
        "b2": dict(home_school_code=B, in_post_since=NEW),
        "c3": dict(home_school_code=C, in_post_since=NEW),
    }
    return {key: {**await f.staff(rotation, name=key, **fields), "key": key} for key, fields in people.items()}


CANDIDATES = ("a1", "a2", "a3", "a4", "a5", "b1", "c1", "d1")
COUNTY = frozenset({"district", "municipal", "special_grade"})


def brute_force(staff: dict[str, dict], *, target_rate=Fraction(1, 10), target_share=Fraction(1, 5),
                max_incoming: int | None = None, excluded: frozenset[str] = frozenset(),
                excluded_schools: frozenset[str] = frozenset(), included: frozenset[str] = frozenset()):
    """Every assignment of the candidates (stay, or any other school enrolling their section),
    scored lexicographically: rate bar, share bar, Σ CV² (exact, the kernel CV arithmetic), moves."""
    eligible = len(CANDIDATES)
    placement: dict[tuple[str, str], int] = {}
    for s in staff.values():
        if s["role"] == "teacher" and s["backbone_level"] in COUNTY:
            key = (s["home_school_code"], s["section"])
            placement[key] = placement.get(key, 0) + 1
    movable = [staff[k] for k in CANDIDATES if k not in excluded and staff[k]["home_school_code"] not in excluded_schools]
    options = [[None] + [code for code, enrol in ENROL.items() if s["section"] in enrol and code != s["home_school_code"]
                         and code not in excluded_schools] for s in movable]
    briefs = [{"code": code, "name": code, "primary_enrollment": e.get("primary", 0),
               "junior_enrollment": e.get("junior", 0)} for code, e in ENROL.items()]
    best = None
    for combo in itertools.product(*options):
        moves = [(s, to) for s, to in zip(movable, combo) if to]
        if not included <= {s["key"] for s, _ in moves}:
            continue
        arriving: dict[str, int] = {}
        for _, to in moves:
            arriving[to] = arriving.get(to, 0) + 1
        if max_incoming is not None and any(n > max_incoming for n in arriving.values()):
            continue
        after = dict(placement)
        for s, to in moves:
            if s["role"] == "teacher" and s["backbone_level"] in COUNTY:
                after[(s["home_school_code"], s["section"])] -= 1
                after[(to, s["section"])] = after.get((to, s["section"]), 0) + 1
        sections = arithmetic.district_sections(briefs, after)
        cv2 = sum(x.cv_squared for x in sections.values() if x.cv_squared is not None)
        county = sum(1 for s, _ in moves if s["backbone_level"] in COUNTY)
        rate_met = Fraction(len(moves), eligible) >= target_rate
        share_met = bool(moves) and Fraction(county, len(moves)) >= target_share
        key = (not rate_met, not share_met, cv2, len(moves))
        if best is None or key < best[0]:
            best = (key, {s: arithmetic.present(x.cv, 6) for s, x in sections.items()})
    return best


async def test_small_district_proposal_equals_brute_force_optimum(partnership, rotation, db_engine):
    staff = await small_district(partnership, rotation)
    response = await rotation.post(PATH, json=BODY)
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/api/v1/districts/{D}/rotation-proposals/{body['id']}"
    result = body["result"]
    (rate_unmet, share_unmet, _, moves), cvs = brute_force(staff)
    assert (rate_unmet, share_unmet) == (False, False)
    assert len(result["moves"]) == moves
    assert result["after"]["primary"]["cv"] == cvs["primary"]
    assert result["after"]["junior"]["cv"] == cvs["junior"]
    assert result["rotation_rate"] == {"target": 0.1, "met": True, "why": None}
    assert result["backbone_share"] == {"target": 0.2, "met": True, "why": None}
    assert result["optimiser"]["method"] == "cp-sat" and result["optimiser"]["status"] == "optimal"
    assert result["optimiser"]["gap"] == 0.0 and result["optimiser"]["exact_weights"] is True
    assert result["candidates"] == 8 and result["before"]["eligible"] == 8 and result["before"]["rotated"] == 0
    # Before: primary A 5, B 0, C 1, E 0 of 2,400 students (mean 0.25); junior D 3, E 1.
    assert result["before"]["primary"] == {"school_count": 4, "enrollment": 2400, "backbone": 6, "mean": 0.25,
                                           "cv": 0.894427, "target_cv": 0.5, "meets_target_cv": False,
                                           "schools_below_one": 4}
    assert result["after"]["primary"]["mean"] == 0.25 and result["after"]["primary"]["backbone"] == 6
    # The answer: two of A's eligible backbone teachers go to B and E, leaving A 3, B 1, C 1, E 1
    # (CV 0.182574); among A's four alike, by staff number; junior is as even as it can be.
    assert [(m["name"], m["from_school_code"], m["to_school_code"]) for m in result["moves"]] == [
        ("a1", A, B), ("a2", A, E)]
    assert result["moves"][0]["from_school"] == {"code": A, "per_100_before": 0.5, "per_100_after": 0.3}
    assert result["moves"][0]["to_school"] == {"code": B, "per_100_before": 0.0, "per_100_after": 0.2}
    assert result["moves"][1]["to_school"] == {"code": E, "per_100_before": 0.0, "per_100_after": 0.25}
    assert result["after"]["primary"]["cv"] == 0.182574 and result["after"]["junior"]["cv"] == 0.176777
    assert result["after"]["rotated"] == 2 and result["after"]["rotation_rate"] == 0.25
    assert result["after"]["backbone_share"] == 1.0
    assert "先教师后干部" in result["objective"] and "先骨干后普通" in result["objective"]
    stored = await fetch(db_engine, "SELECT status, district_code, academic_year, created_by, plan_id, "
                                    "result->'after'->'primary'->>'cv' AS cv FROM rotation.rotation_proposals")
    assert stored == [{"status": "done", "district_code": D, "academic_year": 2024, "created_by": "tester",
                       "plan_id": None, "cv": str(cvs["primary"])}]


@pytest.mark.parametrize("seed", range(20))
def test_optimiser_equals_brute_force_on_random_small_districts(seed):
    """≤ 8 schools, ≤ 30 staff, random constraints: same bars met, same Σ CV², same number of moves."""
    rng = random.Random(seed)
    schools = [School(f"S{i}", f"S{i}", {"primary": rng.choice([0, 300, 500, 800, 1200]),
                                         "junior": rng.choice([0, 0, 400, 900])}) for i in range(rng.randint(2, 8))]
    placement: dict[tuple[str, str], int] = {}
    for s in schools:
        for section in ("primary", "junior"):
            placement[(s.code, section)] = rng.randint(0, 3) if s.enrols(section) else 0
    candidates = []
    for k in range(rng.randint(2, 7)):
        s = rng.choice(schools)
        c = Candidate(f"00000000-0000-0000-0000-{k:012d}", f"T{k:03d}", f"n{k}", s.code,
                      rng.choice(["primary", "junior"]), rng.choice(["teacher", "teacher", "principal"]),
                      rng.choice(["none", "school", "district", "municipal"]), "数学")
        candidates.append(c)
        if c.teacher and c.county:
            placement[(s.code, c.section)] = placement.get((s.code, c.section), 0) + 1
    problem = Problem(D, 2024, "full_time", schools, placement, eligible=rng.randint(10, 40), rotated=rng.randint(0, 2),
                      backbone_rotated=0, target_rate=Fraction(1, 10), target_share=Fraction(1, 5),
                      candidates=candidates, max_incoming=rng.choice([None, 1, 2]),
                      keep_section=rng.choice([True, False]))

    def score(moves):
        county = sum(problem.by_id[m.staff_id].county for m in moves)
        return (not problem.rate_met(len(moves)), problem.share_met(len(moves), county) is False,
                figures.cv_squared_sum(problem, moves), len(moves))

    best = None
    options = [[None, *(d for d in problem.destination_filter(c) if d != c.school)] for c in candidates]
    while len(options) > 1 and len(list(itertools.product(*options))) > 4000:  # keep brute force quick
        options.pop()
        problem.candidates.pop()
    problem.__post_init__()
    candidates = problem.candidates
    for combo in itertools.product(*options):
        moves = [Move(c.id, c.school, d) for c, d in zip(candidates, combo) if d]
        arriving: dict[str, int] = {}
        for m in moves:
            arriving[m.to_school] = arriving.get(m.to_school, 0) + 1
        if problem.max_incoming is None or all(n <= problem.max_incoming for n in arriving.values()):
            best = score(moves) if best is None else min(best, score(moves))
    outcome = optimise(problem, seconds=5)
    assert score(outcome.moves) == best
    assert outcome.status == "optimal"
    # The fallback keeps the same rules; with the bars met already, every one of its steps lowers Σ CV².
    fallback = greedy(problem)
    assert len({m.staff_id for m in fallback.moves}) == len(fallback.moves)
    problem.target_rate = problem.target_share = Fraction(0)
    steps = greedy(problem).moves
    values = [figures.cv_squared_sum(problem, steps[:k]) for k in range(len(steps) + 1)]
    assert all(later < earlier for earlier, later in itertools.pairwise(values))
    for m in fallback.moves:
        assert m.to_school in problem.destination_filter(problem.by_id[m.staff_id]) and m.to_school != m.from_school


async def test_infeasible_bars_say_which_and_why(partnership, rotation):
    await small_district(partnership, rotation)
    response = await rotation.post(PATH, json={**BODY, "target_rate": "0.5", "max_moves": 2})
    assert response.status_code == 201, response.text
    result = response.json()["result"]
    assert result["rotation_rate"] == {
        "target": 0.5, "met": False,
        "why": "the rate bar needs 4 more rotated staff (0 of 8 eligible rotated already, target 0.5000), "
               "but max_moves is 2"}
    assert result["backbone_share"]["met"] is True and len(result["moves"]) == 2

    response = await rotation.post(PATH, json={**BODY, "target_rate": "0.9", "target_backbone_share": "1"})
    result = response.json()["result"]
    assert result["rotation_rate"] == {"target": 0.9, "met": True, "why": None}
    assert result["backbone_share"] == {
        "target": 1.0, "met": False,
        "why": "the share bar needs at least 1.0000 of the rotated to be county-level-and-above backbone, "
               "but only 6 such staff can move (0 of 0 rotated already)"}
    assert len(result["moves"]) == 8 and result["after"]["backbone_share"] == 0.75


async def test_constraints_hold(partnership, rotation, db_engine):
    staff = await small_district(partnership, rotation)
    by_id = {s["id"]: s for s in staff.values()}
    response = await rotation.post(PATH, json={
        **BODY, "exclude_staff_ids": [staff["a1"]["id"]], "exclude_school_codes": [C],
        "include_staff_ids": [staff["a5"]["id"]], "max_incoming_per_school": 1, "prefer_same_subject": True})
    assert response.status_code == 201, response.text
    result = response.json()["result"]
    moves = result["moves"]
    assert moves, result
    _, cvs = brute_force(staff, max_incoming=1, excluded=frozenset({"a1"}),
                                        excluded_schools=frozenset({C}), included=frozenset({"a5"}))
    assert result["after"]["primary"]["cv"] == cvs["primary"]
    arriving: dict[str, int] = {}
    for m in moves:
        person = by_id[m["staff_id"]]
        assert person["key"] in CANDIDATES and person["key"] != "a1"  # eligible, not excluded
        assert C not in (m["from_school_code"], m["to_school_code"])
        assert person["section"] in ENROL[m["to_school_code"]]  # keep the section
        assert m["from_school_code"] == person["home_school_code"] != m["to_school_code"]
        arriving[m["to_school_code"]] = arriving.get(m["to_school_code"], 0) + 1
    assert max(arriving.values()) == 1
    assert staff["a5"]["id"] in {m["staff_id"] for m in moves}  # included
    assert len({m["staff_id"] for m in moves}) == len(moves)  # nobody twice

    # An included member who cannot move is refused, and so is an unknown reference.
    refused = await rotation.post(PATH, json={**BODY, "include_staff_ids": [staff["a6"]["id"]]})
    assert refused.status_code == 409
    assert refused.json()["failures"] == [{"staff_id": staff["a6"]["id"], "rule": "not-movable",
                                           "detail": "not eligible on 1 Sept, excluded, or already rotating in the year"}]
    unknown = await rotation.post(PATH, json={**BODY, "exclude_school_codes": ["11019999"]})
    assert unknown.status_code == 422
    assert unknown.json()["errors"] == [{"field": "body.exclude_school_codes.0", "type": "unknown_reference",
                                         "message": f"11019999 is not a school of {D}"}]
    assert (await rotation.post("/v1/districts/110199/rotation-proposals", json=BODY)).status_code == 404
    assert (await fetch(db_engine, "SELECT count(*) AS n FROM rotation.rotation_proposals")) == [{"n": 1}]


async def test_nothing_changes_until_plan_and_approved_figures_equal_after(partnership, rotation, gateway, db_engine):
    await small_district(partnership, rotation)
    tables = ("staff", "rotations", "rotation_plans", "rotation_transitions")

    async def snapshot():
        return {t: await fetch(db_engine, f"SELECT * FROM rotation.{t} ORDER BY 1") for t in tables}

    before = await snapshot()
    response = await gateway.post(f"/api/v1/districts/{D}/rotation-proposals", json=BODY)  # through the gateway
    assert response.status_code == 201, response.text
    proposal = response.json()
    assert await snapshot() == before
    got = await gateway.get(f"/api/v1/districts/{D}/rotation-proposals/{proposal['id']}")
    assert got.status_code == 200 and got.json() == proposal

    planned = await gateway.post(f"/api/v1/districts/{D}/rotation-proposals/{proposal['id']}/plan", json={})
    assert planned.status_code == 201, planned.text
    plan = planned.json()
    assert planned.headers["location"] == f"/api/v1/rotation-plans/{plan['id']}"
    assert (plan["status"], plan["rotations"], plan["rotations_by_status"]) == ("draft", 2, {"planned": 2})
    rows = await fetch(db_engine, "SELECT staff_id, from_school_code, to_school_code, mode, start_date::text AS s, "
                                  "end_date::text AS e, status FROM rotation.rotations ORDER BY to_school_code")
    assert rows == sorted(({"staff_id": UUID(m["staff_id"]), "from_school_code": A,
                            "to_school_code": m["to_school_code"], "mode": "full_time", "s": "2024-09-01",
                            "e": "2025-08-31", "status": "planned"} for m in proposal["result"]["moves"]),
                          key=lambda r: r["to_school_code"])
    again = await gateway.post(f"/api/v1/districts/{D}/rotation-proposals/{proposal['id']}/plan", json={})
    assert again.status_code == 409 and again.json()["type"] == "urn:spp:problem:proposal-planned"

    approved = await gateway.post(f"/api/v1/rotation-plans/{plan['id']}/approve")
    assert approved.status_code == 200, approved.text
    after = proposal["result"]["after"]
    overview = (await gateway.get(f"/api/v1/districts/{D}/overview",
                                  params={"academic_year": 2024, "as_of": "2024-09-01"})).json()
    assert {k: overview["rotation"][k] for k in ("eligible", "rotated", "rotation_rate", "backbone_rotated",
                                                 "backbone_share")} == \
        {k: after[k] for k in ("eligible", "rotated", "rotation_rate", "backbone_rotated", "backbone_share")}
    # The balance counts a teacher at the receiving school once the rotation is active (§4.6).
    for row in await fetch(db_engine, "SELECT id FROM rotation.rotations"):
        assert (await gateway.post(f"/api/v1/rotations/{row['id']}/activate")).status_code == 200
    balance = (await gateway.get(f"/api/v1/districts/{D}/balance", params={"as_of": "2024-09-01"})).json()
    for section in ("primary", "junior"):
        assert {k: balance[section][k] for k in after[section]} == after[section]


async def test_large_district_runs_as_a_job(partnership, settings, partnership_app, db_engine, token):
    from services.rotation.app import create_app

    app = create_app(settings.model_copy(update={"proposal_sync_staff": 0}),
                     transports={"partnership": asgi(partnership_app)})
    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(transport=asgi(app), base_url="http://rotation", timeout=30,
                                   headers={"Authorization": f"Bearer {token()}"})
        async with client:
            await small_district(partnership, client)
            response = await client.post(PATH, json=BODY)
            assert response.status_code == 202, response.text
            body = response.json()
            assert (body["status"], body["result"]) == ("running", None)
            location = response.headers["location"]
            assert location == f"/api/v1/districts/{D}/rotation-proposals/{body['id']}"
            await run_jobs(settings)
            done = (await client.get(location.removeprefix("/api"))).json()
            assert done["status"] == "done" and done["finished_at"] is not None
            assert len(done["result"]["moves"]) == 2 and done["result"]["rotation_rate"]["met"] is True
    jobs = await fetch(db_engine, "SELECT status FROM procrastinate.procrastinate_jobs WHERE task_name = 'spp.task'")
    assert jobs == [{"status": "succeeded"}]
