"""A hand-worked district for the view tests, and gateways whose upstreams can be made to fail.

朝阳区 (110105), on as_of 2025-03-01, academic year 2024 (2024-09-01 – 2025-08-31):

schools        locality  primary junior   pairings (lead → partner)
  S1 实验小学   urban       400     0      P1 S1 → S3 active 2024-09-01..2027-08-31
  S2 劲松小学   urban       200     0      P2 S2 → S5 proposed (never activated)
  S3 黑庄户学校 township    200   300      P3 S4 → Y1 (延庆) active
  S4 八十中学   urban         0   600
  S5 金盏小学   rural       100     0
  Y1 张山营学校 (延庆区 110119, rural) 300 / 200

staff (home)  role/section       backbone       in post     eligible 2024-09-01   rotation in 2024
  T1 张伟 S1  teacher/primary    municipal      2015-09-01  yes                   R1 S1→S3 full_time active
  T2 王芳 S1  teacher/primary    district       2020-09-01  no (6 years: 2026)    R5 S1→S2 withdrawn
  T3 李娜 S2  teacher/primary    none           2010-09-01  yes                   R3 S2→S5 part_time approved
  T4 刘洋 S4  teacher/junior     special_grade  2012-09-01  no (retires 2027)     R6 S4→S3 2023-24 completed
  T5 陈静 S4  teacher/junior     district       2016-09-01  yes                   R2 S4→Y1 full_time active
  T6 赵敏 S3  principal/primary  municipal      2014-09-01  yes                   —
  T7 杨帆 S3  teacher/junior     school         2017-09-01  yes                   R4 S3→S1 planned
  T8 孙丽 S2  teacher/primary    district       2010-09-01  retired               —
  Y1T 周杰 Y1 teacher/primary    municipal      2012-09-01  (延庆)                RY Y1→S2 full_time active
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest

from gateway.app import create_app
from tests.conftest import ENGLISH, asgi
from tests.feed import synced
from tests.gateway import factories as f

CHAOYANG = ("110105", "朝阳区")
YANQING = ("110119", "延庆区")
AS_OF = "2025-03-01"


@dataclass
class World:
    staff: dict[str, dict]
    rotations: dict[str, dict]
    pairings: dict[str, dict]
    studios: dict[str, dict]


@pytest.fixture
async def chaoyang(partnership, rotation, training, db_engine) -> World:
    world = await build_chaoyang(partnership, rotation, training)
    await synced(db_engine)  # training's staff directory has every staff member (completion by district)
    return world


async def build_chaoyang(partnership: httpx.AsyncClient, rotation: httpx.AsyncClient,
                         training: httpx.AsyncClient) -> World:
    """The table above, made through each service's own `/v1` API (in process or real processes)."""
    await f.district(partnership, *CHAOYANG)
    await f.district(partnership, *YANQING)
    await f.school(partnership, "S1", name="北京市朝阳区实验小学", primary=400)
    await f.school(partnership, "S2", name="北京市朝阳区劲松小学", primary=200)
    await f.school(partnership, "S3", name="北京市朝阳区黑庄户学校", stage="nine_year", locality="township",
                   primary=200, junior=300)
    await f.school(partnership, "S4", name="北京市朝阳区第八十中学", stage="junior", junior=600)
    await f.school(partnership, "S5", name="北京市朝阳区金盏小学", locality="rural", primary=100)
    await f.school(partnership, "Y1", district_code=YANQING[0], name="北京市延庆区张山营学校", stage="nine_year",
                   locality="rural", primary=300, junior=200)

    p1 = await f.pairing(partnership, "S1", "S3", activate=True)
    p2 = await f.pairing(partnership, "S2", "S5")
    p3 = await f.pairing(partnership, "S4", "Y1", activate=True)
    await f.activity(partnership, p1["id"], date="2024-10-15", kind="lesson_delivery", teachers=5, students=40,
                     title="送课到校：四年级数学")
    await f.activity(partnership, p1["id"], date="2025-03-20", kind="joint_research", teachers=12,
                     title="联合教研：整本书阅读")
    await f.activity(partnership, p3["id"], date="2024-11-05", kind="student_exchange", teachers=2, students=60,
                     title="城乡学生手拉手")
    # Outside the academic year: not in the totals.
    await f.activity(partnership, p1["id"], date="2025-09-10", kind="teacher_training", teachers=7,
                     title="新学年教师培训")

    s = {}
    s["T1"] = await f.staff(rotation, school_code="S1", name="张伟", backbone_level="municipal")
    s["T2"] = await f.staff(rotation, school_code="S1", name="王芳", backbone_level="district",
                            in_post_since="2020-09-01")
    s["T3"] = await f.staff(rotation, school_code="S2", name="李娜", in_post_since="2010-09-01")
    s["T4"] = await f.staff(rotation, school_code="S4", name="刘洋", section="junior", backbone_level="special_grade",
                            in_post_since="2012-09-01", retirement_date="2027-01-31")
    s["T5"] = await f.staff(rotation, school_code="S4", name="陈静", section="junior", backbone_level="district",
                            in_post_since="2016-09-01")
    s["T6"] = await f.staff(rotation, school_code="S3", name="赵敏", role="principal", backbone_level="municipal",
                            in_post_since="2014-09-01")
    s["T7"] = await f.staff(rotation, school_code="S3", name="杨帆", section="junior", backbone_level="school",
                            in_post_since="2017-09-01")
    s["T8"] = await f.staff(rotation, school_code="S2", name="孙丽", backbone_level="district",
                            in_post_since="2010-09-01")
    s["Y1T"] = await f.staff(rotation, school_code="Y1", name="周杰", backbone_level="municipal",
                             in_post_since="2012-09-01")
    await f.policy(rotation, CHAOYANG[0], target_rate="0.65")

    r = {}
    r["R1"] = await f.rotation_of(rotation, s["T1"]["id"], to="S3", status="active")
    r["R2"] = await f.rotation_of(rotation, s["T5"]["id"], to="Y1", status="active")
    r["R3"] = await f.rotation_of(rotation, s["T3"]["id"], to="S5", mode="part_time", start="2025-02-01",
                                  end="2025-07-31", status="approved")
    r["R4"] = await f.rotation_of(rotation, s["T7"]["id"], to="S1", start="2025-03-01", status="planned")
    r["R5"] = await f.rotation_of(rotation, s["T2"]["id"], to="S2", status="withdrawn")
    r["R6"] = await f.rotation_of(rotation, s["T4"]["id"], to="S3", start="2023-09-01", end="2024-08-31",
                                  status="completed")
    r["RY"] = await f.rotation_of(rotation, s["Y1T"]["id"], to="S2", status="active")

    # Training hours (window 2020-03-01 < earned_on ≤ 2025-03-01, bar 360).
    await f.credit(training, s["T1"]["id"], hours="360", earned_on="2024-06-01")
    await f.credit(training, s["T2"]["id"], hours="200", earned_on="2021-05-01")
    await f.credit(training, s["T2"]["id"], hours="160", earned_on="2025-03-01")  # last day counts
    await f.credit(training, s["T3"]["id"], hours="350", earned_on="2024-01-01")  # + 3 from a session: 353
    await f.credit(training, s["T4"]["id"], hours="400", earned_on="2020-03-01")  # first day excluded
    await f.credit(training, s["T5"]["id"], hours="400", earned_on="2023-01-01")
    await f.credit(training, s["T8"]["id"], hours="500", earned_on="2023-01-01")  # completed, but retires
    await f.credit(training, s["Y1T"]["id"], hours="360", earned_on="2024-01-01")  # another district

    studios = {}
    studios["A"] = await f.studio(training, host_staff_id=s["T1"]["id"], district_code=CHAOYANG[0],
                                  name="张伟名师工作室")
    studios["B"] = await f.studio(training, host_staff_id=s["T4"]["id"], district_code=YANQING[0],
                                  name="刘洋特级教师工作站", kind="special_grade_station")
    studios["C"] = await f.studio(training, host_staff_id=s["T6"]["id"], district_code=CHAOYANG[0],
                                  name="赵敏名校长工作室", kind="famous_principal")
    await f.member(training, studios["A"]["id"], s["T3"]["id"])
    await f.member(training, studios["A"]["id"], s["T7"]["id"])
    await f.member(training, studios["B"]["id"], s["Y1T"]["id"])
    await f.session(training, studios["A"]["id"], starts_at="2024-10-12T09:00:00+08:00", hours="3",
                    attendees=[s["T3"]["id"], s["T7"]["id"]])
    await f.session(training, studios["A"]["id"], starts_at="2025-09-15T09:00:00+08:00", hours="2",
                    attendees=[s["T3"]["id"]], kind="air_classroom", title="空中课堂")
    await f.session(training, studios["B"]["id"], starts_at="2024-11-01T14:00:00+08:00", hours="1.5",
                    attendees=[s["Y1T"]["id"]], kind="onsite_guidance", title="送教下乡")
    s["T8"] = await f.retire(rotation, s["T8"]["id"])
    return World(staff=s, rotations=r, pairings={"P1": p1, "P2": p2, "P3": p3}, studios=studios)


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.fixture
def gateway_with(settings, partnership_app, rotation_app, training_app, token) -> Callable:
    """`async with gateway_with(training=dead) as client:` — a gateway whose named upstreams use the
    given transports and the others reach the real apps in process."""

    @asynccontextmanager
    async def make(**overrides: httpx.AsyncBaseTransport) -> AsyncIterator[httpx.AsyncClient]:
        transports = {"partnership": asgi(partnership_app), "rotation": asgi(rotation_app),
                      "training": asgi(training_app), **overrides}
        app = create_app(settings, transports=transports)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=asgi(app), base_url="http://gateway", timeout=30,
                                         headers={"Authorization": f"Bearer {token()}", **ENGLISH}) as client:
                client.app = app  # type: ignore[attr-defined]
                yield client

    return make
