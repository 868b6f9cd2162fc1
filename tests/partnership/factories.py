"""Async factories with keyword defaults: each makes one record through the HTTP API."""

from __future__ import annotations

import httpx

CHAOYANG = ("110105", "朝阳区")
YANQING = ("110119", "延庆区")


async def district(client: httpx.AsyncClient, code: str = CHAOYANG[0], name: str = CHAOYANG[1]) -> dict:
    response = await client.post("/v1/districts", json={"code": code, "name": name})
    assert response.status_code == 201, response.text
    return response.json()


async def school(client: httpx.AsyncClient, code: str, *, district_code: str = CHAOYANG[0],
                 name: str | None = None, stage: str = "primary", locality: str = "urban",
                 primary: int = 0, junior: int = 0, senior: int = 0) -> dict:
    response = await client.post("/v1/schools", json={
        "code": code, "name": name or f"北京市测试学校{code}", "district_code": district_code,
        "stage": stage, "locality": locality, "primary_enrollment": primary,
        "junior_enrollment": junior, "senior_enrollment": senior,
    })
    assert response.status_code == 201, response.text
    return response.json()


async def pairing(client: httpx.AsyncClient, lead: str, partner: str, *, start: str = "2024-09-01",
                  end: str = "2027-08-31", activate: bool = False, program: str = "城乡学校手拉手") -> dict:
    response = await client.post("/v1/pairings", json={
        "lead_school_code": lead, "partner_school_code": partner, "program": program,
        "start_date": start, "end_date": end, "goals": "共建共享优质课程资源",
    })
    assert response.status_code == 201, response.text
    body = response.json()
    if activate:
        activated = await client.post(f"/v1/pairings/{body['id']}/activate")
        assert activated.status_code == 200, activated.text
        body = activated.json()
    return body


async def activity(client: httpx.AsyncClient, pairing_id: str, *, date: str, kind: str = "lesson_delivery",
                   teachers: int = 0, students: int = 0, title: str = "送课到校") -> dict:
    response = await client.post(f"/v1/pairings/{pairing_id}/activities", json={
        "kind": kind, "date": date, "title": title, "teacher_participants": teachers,
        "student_participants": students,
    })
    assert response.status_code == 201, response.text
    return response.json()
