"""Demo data, loaded through the public API so it obeys every rule a client would.

Beijing's 16 districts with their GB/T 2260 codes and a few schools each (an urban primary and
junior school, a township nine-year school and a rural primary school), one active hand-in-hand
pairing per district with an activity; six staff per school (bulk import), one active full-time
rotation of a backbone teacher from the urban to the rural school, a famous-teacher studio with a
session and its attendance, and external training credits. Idempotent: what exists is kept.
"""

from __future__ import annotations

from collections import Counter

import httpx

BEIJING_DISTRICTS = [
    ("110101", "东城区"), ("110102", "西城区"), ("110105", "朝阳区"), ("110106", "丰台区"),
    ("110107", "石景山区"), ("110108", "海淀区"), ("110109", "门头沟区"), ("110111", "房山区"),
    ("110112", "通州区"), ("110113", "顺义区"), ("110114", "昌平区"), ("110115", "大兴区"),
    ("110116", "怀柔区"), ("110117", "平谷区"), ("110118", "密云区"), ("110119", "延庆区"),
]

SCHOOL_KINDS = [
    # (suffix, name pattern, stage, locality, primary, junior)
    ("01", "北京市{d}第一实验小学", "primary", "urban", 1860, 0),
    ("02", "北京市{d}实验中学", "junior", "urban", 0, 1240),
    ("03", "北京市{d}城关镇九年一贯制学校", "nine_year", "township", 520, 310),
    ("04", "北京市{d}山区中心小学", "primary", "rural", 180, 0),
]


def demo_records() -> dict[str, list[dict]]:
    districts, schools, pairings = [], [], []
    for code, name in BEIJING_DISTRICTS:
        districts.append({"code": code, "name": name})
        for suffix, pattern, stage, locality, primary, junior in SCHOOL_KINDS:
            schools.append({"code": f"{code}{suffix}", "name": pattern.format(d=name), "district_code": code,
                            "stage": stage, "locality": locality, "primary_enrollment": primary,
                            "junior_enrollment": junior, "senior_enrollment": 0})
        pairings.append({"lead_school_code": f"{code}01", "partner_school_code": f"{code}04",
                         "program": f"{name}城乡学校手拉手结对帮扶", "start_date": "2024-09-01",
                         "end_date": "2027-08-31", "goals": "共建课程、送课到校、联合教研"})
    return {"districts": districts, "schools": schools, "pairings": pairings}


STAFF_PATTERN = [
    # (number suffix, surname+name, role, backbone level, in post since)
    ("1", "王建国", "principal", "municipal", "2012-09-01"),
    ("2", "李华", "teacher", "special_grade", "2010-09-01"),
    ("3", "张伟", "teacher", "district", "2016-09-01"),
    ("4", "刘洋", "teacher", "school", "2017-09-01"),
    ("5", "陈静", "teacher", "none", "2020-09-01"),
    ("6", "杨帆", "teacher", "district", "2015-09-01"),
]


def staff_csv() -> bytes:
    lines = ["工号,姓名,任职学校代码,岗位,任教学段,学科,骨干级别,现岗位起始日期"]
    for code, _ in BEIJING_DISTRICTS:
        for suffix, _, stage, *_ in SCHOOL_KINDS:
            section = "junior" if stage == "junior" else "primary"
            for number, name, role, level, since in STAFF_PATTERN:
                lines.append(f"D{code}{suffix}{number},{name},{code}{suffix},{role},{section},语文,{level},{since}")
    return ("\n".join(lines) + "\n").encode("utf-8")


async def _staff_by_no(client: httpx.AsyncClient, code: str) -> dict[str, dict]:
    page = (await client.get("/staff", params={"district_code": code, "limit": 500})).json()
    return {member["staff_no"]: member for member in page.get("items", [])}


async def seed_demo(base_url: str, token: str, *,
                    transport: httpx.AsyncBaseTransport | None = None) -> dict[str, int]:
    """Create what is missing; return how many records of each kind were created."""
    created: Counter[str] = Counter()
    records = demo_records()
    async with httpx.AsyncClient(base_url=f"{base_url}/api/v1", timeout=30.0, transport=transport,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        for kind in ("districts", "schools"):
            for record in records[kind]:
                response = await client.post(f"/{kind}", json=record)
                if response.status_code == 201:
                    created[kind] += 1
                elif response.status_code != 409:
                    response.raise_for_status()
        for record in records["pairings"]:
            response = await client.post("/pairings", json=record)
            if response.status_code != 201:
                continue  # already paired (409): the demo pairing exists
            created["pairings"] += 1
            pairing_id = response.json()["id"]
            await client.post(f"/pairings/{pairing_id}/activate")
            activity = await client.post(f"/pairings/{pairing_id}/activities", json={
                "kind": "lesson_delivery", "date": "2024-10-15", "title": "送课到校：四年级数学公开课",
                "teacher_participants": 6, "student_participants": 42})
            if activity.status_code == 201:
                created["activities"] += 1
        imported = await client.post("/imports/staff", content=staff_csv(), headers={"content-type": "text/csv"})
        if imported.status_code == 200 and imported.json()["inserted"]:
            created["staff"] += imported.json()["inserted"]
        for code, name in BEIJING_DISTRICTS:
            await _seed_district_programmes(client, code, name, created)
    return dict(created)


async def _seed_district_programmes(client: httpx.AsyncClient, code: str, name: str, created: Counter) -> None:
    staff = await _staff_by_no(client, code)
    rotating, host = staff.get(f"D{code}013"), staff.get(f"D{code}012")
    if rotating is not None:
        # A district-level backbone teacher of the urban primary school teaches a year at the rural one.
        rotation = await client.post("/rotations", json={
            "staff_id": rotating["id"], "to_school_code": f"{code}04", "mode": "full_time",
            "start_date": "2024-09-01", "end_date": "2025-08-31"})
        if rotation.status_code == 201:
            created["rotations"] += 1
            for action in ("approve", "activate"):
                await client.post(f"/rotations/{rotation.json()['id']}/{action}")
    studio_name = f"{name}{host['name']}名师工作室" if host else ""
    existing = (await client.get("/studios", params={"district_code": code, "limit": 500})).json()
    if host is None or any(item["name"] == studio_name for item in existing.get("items", [])):
        return
    studio = await client.post("/studios", json={
        "name": studio_name, "kind": "famous_teacher", "host_staff_id": host["id"],
        "subject": "语文", "district_code": code, "start_date": "2024-09-01", "capacity": 10})
    if studio.status_code != 201:
        return
    created["studios"] += 1
    studio_id = studio.json()["id"]
    members = [staff[no]["id"] for no in (f"D{code}035", f"D{code}045", f"D{code}043") if no in staff]
    for member in members:
        await client.post(f"/studios/{studio_id}/members", json={"staff_id": member, "joined_on": "2024-09-10"})
    session = await client.post(f"/studios/{studio_id}/sessions", json={
        "kind": "collective_research", "title": "整本书阅读教学集体教研", "starts_at": "2024-10-16T14:00:00+08:00",
        "hours": "3.5"})
    if session.status_code == 201:
        created["sessions"] += 1
        await client.put(f"/sessions/{session.json()['id']}/attendance", json={"staff_ids": members})
    for member in members:
        credit = await client.post("/training-hours", json={
            "staff_id": member, "hours": "360", "earned_on": "2024-06-30", "source": "municipal_platform",
            "reference": f"DEMO-{code}-{member}"})
        if credit.status_code == 201:
            created["training_credits"] += 1
