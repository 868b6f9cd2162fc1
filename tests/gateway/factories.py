"""Records for the view tests, each made through its owner's HTTP API (keyword defaults).

The district and school helpers come from the partnership tests; staff, rotations, studios and
training hours are made here against the rotation and training APIs (docs: shared/api.md).
"""

from __future__ import annotations

import itertools

import httpx

from tests.partnership.factories import activity, district, pairing, school  # noqa: F401  (re-exported)

_numbers = itertools.count(1)


async def staff(rotation: httpx.AsyncClient, *, school_code: str, name: str, role: str = "teacher",
                section: str = "primary", backbone_level: str = "none", in_post_since: str = "2015-09-01",
                retirement_date: str | None = None, subject: str = "语文") -> dict:
    response = await rotation.post("/v1/staff", json={
        "staff_no": f"G{next(_numbers):07d}", "name": name, "home_school_code": school_code, "role": role,
        "section": section, "subject": subject, "backbone_level": backbone_level,
        "in_post_since": in_post_since, "retirement_date": retirement_date})
    assert response.status_code == 201, response.text
    return response.json()


async def retire(rotation: httpx.AsyncClient, staff_id: str) -> dict:
    response = await rotation.patch(f"/v1/staff/{staff_id}", json={"status": "retired"})
    assert response.status_code == 200, response.text
    return response.json()


async def rotation_of(rotation: httpx.AsyncClient, staff_id: str, *, to: str, mode: str = "full_time",
                      start: str = "2024-09-01", end: str = "2025-08-31", status: str = "planned") -> dict:
    """Create a rotation and walk it to `status` through the workflow's own actions."""
    response = await rotation.post("/v1/rotations", json={
        "staff_id": staff_id, "to_school_code": to, "mode": mode, "start_date": start, "end_date": end})
    assert response.status_code == 201, response.text
    created = response.json()
    path = {"planned": [], "approved": ["approve"], "active": ["approve", "activate"],
            "completed": ["approve", "activate", "complete"], "withdrawn": ["withdraw"]}[status]
    for action in path:
        step = await rotation.post(f"/v1/rotations/{created['id']}/{action}")
        assert step.status_code == 200, step.text
        created = step.json()
    return created


async def policy(rotation: httpx.AsyncClient, district_code: str, **fields) -> dict:
    response = await rotation.put(f"/v1/rotation-policies/{district_code}", json=fields)
    assert response.status_code == 200, response.text
    return response.json()


async def studio(training: httpx.AsyncClient, *, host_staff_id: str, district_code: str, name: str,
                 kind: str = "famous_teacher", start_date: str = "2024-09-01") -> dict:
    response = await training.post("/v1/studios", json={
        "name": name, "kind": kind, "host_staff_id": host_staff_id, "subject": "语文",
        "district_code": district_code, "start_date": start_date})
    assert response.status_code == 201, response.text
    return response.json()


async def member(training: httpx.AsyncClient, studio_id: str, staff_id: str, *, joined_on: str = "2024-09-01") -> dict:
    response = await training.post(f"/v1/studios/{studio_id}/members",
                                   json={"staff_id": staff_id, "joined_on": joined_on})
    assert response.status_code == 201, response.text
    return response.json()


async def session(training: httpx.AsyncClient, studio_id: str, *, starts_at: str, hours: str,
                  attendees: list[str], kind: str = "collective_research", title: str = "整本书阅读教学研讨") -> dict:
    response = await training.post(f"/v1/studios/{studio_id}/sessions",
                                   json={"kind": kind, "title": title, "starts_at": starts_at, "hours": hours})
    assert response.status_code == 201, response.text
    created = response.json()
    attended = await training.put(f"/v1/sessions/{created['id']}/attendance", json={"staff_ids": attendees})
    assert attended.status_code == 200, attended.text
    return created


async def credit(training: httpx.AsyncClient, staff_id: str, *, hours: str, earned_on: str,
                 source: str = "municipal_platform") -> dict:
    response = await training.post("/v1/training-hours", json={
        "staff_id": staff_id, "hours": hours, "earned_on": earned_on, "source": source,
        "reference": f"{source}-{staff_id}-{earned_on}-{hours}"})
    assert response.status_code == 201, response.text
    return response.json()
