"""Async factories with keyword defaults for the rotation tests; each makes one record over HTTP.

Districts and schools are registered through the real partnership service (the rotation service
checks them there), staff, policies, plans and rotations through the rotation service.
"""

from __future__ import annotations

import itertools

import httpx

from tests.partnership.factories import district, school  # noqa: F401  (same records, re-exported)

CHAOYANG = ("110105", "朝阳区")
YANQING = ("110119", "延庆区")
HAIDIAN = ("110108", "海淀区")

PROBLEM = "application/problem+json"
_numbers = itertools.count(1)


async def chaoyang_with_schools(partnership: httpx.AsyncClient) -> None:
    """朝阳区 with two primary schools and a junior school; 延庆区 with a rural school."""
    await district(partnership)
    await district(partnership, *YANQING)
    await school(partnership, "11010501", name="北京市朝阳区实验小学", primary=1200)
    await school(partnership, "11010502", name="北京市朝阳区劲松小学", primary=600)
    await school(partnership, "11010503", name="北京市朝阳区第八十中学", stage="junior", junior=900)
    await school(partnership, "11011901", district_code=YANQING[0], name="北京市延庆区张山营学校",
                 stage="nine_year", locality="rural", primary=300, junior=200)


def staff_body(*, home_school_code: str = "11010501", staff_no: str | None = None, name: str = "张伟",
               role: str = "teacher", section: str = "primary", subject: str | None = "数学",
               backbone_level: str = "none", in_post_since: str = "2015-09-01",
               retirement_date: str | None = None) -> dict:
    return {"staff_no": staff_no or f"T{next(_numbers):06d}", "name": name,
            "home_school_code": home_school_code, "role": role, "section": section, "subject": subject,
            "backbone_level": backbone_level, "in_post_since": in_post_since,
            "retirement_date": retirement_date}


async def staff(rotation: httpx.AsyncClient, **fields) -> dict:
    response = await rotation.post("/v1/staff", json=staff_body(**fields))
    assert response.status_code == 201, response.text
    return response.json()


async def rotation_of(rotation: httpx.AsyncClient, staff_id: str, *, to: str = "11011901",
                      mode: str = "full_time", start: str = "2024-09-01", end: str = "2025-08-31",
                      plan_id: str | None = None, status: str = "planned") -> dict:
    """Create a rotation and walk it to `status` through the workflow's own actions."""
    body = {"staff_id": staff_id, "to_school_code": to, "mode": mode, "start_date": start, "end_date": end}
    if plan_id:
        body["plan_id"] = plan_id
    response = await rotation.post("/v1/rotations", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    path = {"planned": [], "approved": ["approve"], "active": ["approve", "activate"],
            "completed": ["approve", "activate", "complete"], "withdrawn": ["withdraw"]}[status]
    for action in path:
        step = await rotation.post(f"/v1/rotations/{created['id']}/{action}")
        assert step.status_code == 200, step.text
        created = step.json()
    return created
