"""Deterministic synthetic data at the size of a Beijing-scale city, for `make bench`.

At scale 1.0: 16 districts, 1,700 schools, 150,000 staff, 40,000 rotations, 1,500,000 training-hour
credits over about seven years, a few hundred pairings with their activities, and studios with
sessions and attendance. `SPP_BENCH_SCALE` multiplies every count (the 16 districts stay), so a
developer can run the whole benchmark in a minute at 0.02.

Everything comes from one seeded `random.Random`, so the same scale gives the same records on every
run; records name each other by index (staff) or natural key (school code), never by database id,
and files are rendered as CSV bytes in memory (1.5 M credit rows in a few seconds).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from services.common import indicators
from services.common.seed import BEIJING_DISTRICTS

AS_OF = date(2025, 3, 1)
ACADEMIC_YEAR = 2024  # 1 Sept 2024 – 31 Aug 2025, which contains AS_OF
SEED = 20250301

FULL = {"schools": 1_700, "staff": 150_000, "rotations": 40_000, "credits": 1_500_000, "pairings": 365,
        "studios": 120, "credit_file_rows": 250_000}
# At very small scales a few of each still exist, so every figure has something to count.
MINIMUM = {"schools": 48, "staff": 480, "rotations": 40, "credits": 2_000, "pairings": 8, "studios": 4,
           "credit_file_rows": 500}

# Roughly Beijing's school counts by district; core districts are all urban (§3 locality).
DISTRICT_WEIGHT = {"110101": 60, "110102": 70, "110105": 200, "110106": 120, "110107": 40, "110108": 190,
                   "110109": 30, "110111": 130, "110112": 140, "110113": 110, "110114": 130, "110115": 130,
                   "110116": 50, "110117": 50, "110118": 60, "110119": 40}
CORE = {"110101", "110102"}
NEAR = {"110105", "110106", "110107", "110108"}

STAGES = [("primary", 58), ("junior", 20), ("nine_year", 12), ("complete_secondary", 6), ("senior", 3),
          ("twelve_year", 1)]
STAGE_SECTIONS = {"primary": ("primary",), "junior": ("junior",), "nine_year": ("primary", "junior"),
                  "complete_secondary": ("junior", "senior"), "senior": ("senior",),
                  "twelve_year": ("primary", "junior", "senior")}
STAGE_NAME = {"primary": "小学", "junior": "中学", "nine_year": "九年一贯制学校", "complete_secondary": "完全中学",
              "senior": "高级中学", "twelve_year": "十二年一贯制学校"}
ENROLLMENT = {  # (section, locality) -> (low, high) students
    ("primary", "urban"): (600, 2800), ("primary", "township"): (200, 1200), ("primary", "rural"): (30, 400),
    ("junior", "urban"): (400, 1800), ("junior", "township"): (150, 900), ("junior", "rural"): (30, 300),
    ("senior", "urban"): (600, 2000), ("senior", "township"): (300, 1200), ("senior", "rural"): (200, 800),
}
BACKBONE = [("none", 62), ("school", 16), ("district", 14), ("municipal", 6), ("special_grade", 2)]
COUNTY_AND_ABOVE = tuple(sorted(indicators.COUNTY_AND_ABOVE))  # the kernel's set, in a fixed order
SUBJECTS = ["语文", "数学", "英语", "物理", "化学", "生物", "历史", "地理", "道德与法治", "音乐", "体育", "美术",
            "信息技术", "科学"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国玉兰红梅文斌宇浩凯鹏飞欣怡佳琪子涵雨轩思源博文"
CREDIT_SOURCES = [("市级继续教育平台", 40), ("区级研修", 30), ("国家智慧教育平台", 20), ("校本研修", 10)]
CREDIT_HOURS = [("12", 10), ("16", 10), ("24", 20), ("36", 15), ("48", 15), ("60", 10), ("72", 10), ("90", 5),
                ("7.5", 3), ("120", 2)]
CREDIT_FIRST, CREDIT_LAST = date(2018, 1, 1), date(2025, 6, 30)  # ~7.5 years, some after AS_OF
ACTIVITY_KINDS = ["teacher_training", "lesson_delivery", "joint_research", "student_exchange", "cadre_shadowing",
                  "resource_sharing", "other"]
STUDIO_KINDS = [("famous_teacher", 60), ("famous_principal", 15), ("famous_head_teacher", 15),
                ("special_grade_station", 10)]
SESSION_KINDS = ["online_seminar", "air_classroom", "onsite_guidance", "shadow_training", "collective_research",
                 "lecture"]
POLICIES = {"110108": {"min_years_teacher": 5}, "110119": {"retirement_exempt_years": 3}}


@dataclass(frozen=True)
class Sizes:
    scale: float
    schools: int
    staff: int
    rotations: int
    credits: int
    pairings: int
    studios: int
    credit_file_rows: int

    @classmethod
    def at(cls, scale: float) -> Sizes:
        if scale <= 0:
            raise ValueError("SPP_BENCH_SCALE must be positive")
        counts = {name: max(MINIMUM[name], round(full * scale)) for name, full in FULL.items()}
        return cls(scale=scale, **counts)


@dataclass(slots=True)
class School:
    code: str
    name: str
    district_code: str
    stage: str
    locality: str
    primary: int
    junior: int
    senior: int


@dataclass(slots=True)
class Staff:
    staff_no: str
    name: str
    school: int  # index into Dataset.schools
    role: str
    section: str
    subject: str
    backbone: str
    in_post_since: date
    retirement_date: date | None


@dataclass(slots=True)
class Rotation:
    staff: int
    to_school: int
    mode: str
    start: date
    end: date
    status: str  # planned, approved, active, completed or withdrawn


@dataclass(slots=True)
class Pairing:
    lead: int
    partner: int
    start: date
    end: date
    status: str  # proposed, active, suspended or ended
    activities: list[tuple[str, date, str, int, int]] = field(default_factory=list)


@dataclass(slots=True)
class Studio:
    host: int
    district_code: str
    kind: str
    subject: str
    start: date
    end: date
    members: list[int]
    sessions: list[tuple[str, str, str, str, list[int]]]  # kind, title, starts_at, hours, attendee indices


@dataclass
class Credits:
    """1.5 M rows as parallel columns: cheap to build and to render."""

    staff: list[int]
    hours: list[str]
    earned_on: list[str]
    source: list[str]


@dataclass
class Dataset:
    sizes: Sizes
    districts: list[tuple[str, str]]
    schools: list[School]
    staff: list[Staff]
    rotations: list[Rotation]
    pairings: list[Pairing]
    studios: list[Studio]
    credits: Credits
    retirees: list[int]  # staff retired (status) after everything is loaded
    policies: dict[str, dict[str, int]]

    # Files ---------------------------------------------------------------------------------

    def schools_csv(self) -> bytes:
        lines = ["code,name,district_code,stage,locality,primary_enrollment,junior_enrollment,senior_enrollment"]
        lines += [f"{s.code},{s.name},{s.district_code},{s.stage},{s.locality},{s.primary},{s.junior},{s.senior}"
                  for s in self.schools]
        return ("\n".join(lines) + "\n").encode()

    def staff_csv(self) -> bytes:
        schools = self.schools
        lines = ["staff_no,name,home_school_code,role,section,subject,backbone_level,in_post_since,retirement_date"]
        lines += [f"{m.staff_no},{m.name},{schools[m.school].code},{m.role},{m.section},{m.subject},{m.backbone},"
                  f"{m.in_post_since.isoformat()},{m.retirement_date.isoformat() if m.retirement_date else ''}"
                  for m in self.staff]
        return ("\n".join(lines) + "\n").encode()

    def credit_files(self, keys: list[str], key_column: str = "staff_id") -> list[bytes]:
        """The credits as CSV files of `sizes.credit_file_rows` rows; `keys[i]` names staff i (its id
        or its staff_no, per `key_column`). References are unique: `BJ` + the global row number."""
        c = self.credits
        size = self.sizes.credit_file_rows
        files = []
        for first in range(0, len(c.staff), size):
            last = min(first + size, len(c.staff))
            lines = [f"{key_column},hours,earned_on,source,reference"]
            lines += [f"{keys[s]},{h},{d},{src},BJ{i:08d}" for i, s, h, d, src in zip(
                range(first, last), c.staff[first:last], c.hours[first:last], c.earned_on[first:last],
                c.source[first:last])]
            files.append(("\n".join(lines) + "\n").encode())
        return files

    def rotations_csv(self, rotations: list[Rotation] | None = None) -> bytes:
        """Historical rotations by staff_no, for `POST /imports/rotations` where it exists."""
        staff, schools = self.staff, self.schools
        lines = ["staff_no,from_school_code,to_school_code,mode,start_date,end_date,status"]
        lines += [f"{staff[r.staff].staff_no},{schools[staff[r.staff].school].code},{schools[r.to_school].code},"
                  f"{r.mode},{r.start.isoformat()},{r.end.isoformat()},{r.status}"
                  for r in (self.rotations if rotations is None else rotations)]
        return ("\n".join(lines) + "\n").encode()

    def counts(self) -> dict[str, int]:
        return {"districts": len(self.districts), "schools": len(self.schools), "staff": len(self.staff),
                "rotations": len(self.rotations), "credits": len(self.credits.staff),
                "pairings": len(self.pairings), "activities": sum(len(p.activities) for p in self.pairings),
                "studios": len(self.studios), "members": sum(len(s.members) for s in self.studios),
                "sessions": sum(len(s.sessions) for s in self.studios),
                "attendances": sum(len(x[4]) for s in self.studios for x in s.sessions),
                "retirements": len(self.retirees)}


# Generation ---------------------------------------------------------------------------------

def _weighted(rng: random.Random, table: list[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def _day(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randint(0, (last - first).days))


def _apportion(total: int, weights: list[float], minimum: int = 0) -> list[int]:
    """Largest-remainder split of `total` by weight, each share at least `minimum`."""
    rest = total - minimum * len(weights)
    scale = sum(weights)
    exact = [rest * w / scale for w in weights]
    shares = [math.floor(x) for x in exact]
    for i in sorted(range(len(weights)), key=lambda i: exact[i] - shares[i], reverse=True)[:rest - sum(shares)]:
        shares[i] += 1
    return [s + minimum for s in shares]


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.randint(1, 2)))


def _schools(rng: random.Random, sizes: Sizes) -> list[School]:
    codes = [code for code, _ in BEIJING_DISTRICTS]
    names = dict(BEIJING_DISTRICTS)
    per_district = _apportion(sizes.schools, [DISTRICT_WEIGHT[c] for c in codes], minimum=3)
    schools = []
    for code, count in zip(codes, per_district):
        for i in range(count):
            if i == 0:
                locality = "urban"
            elif i == 1 and code not in CORE:
                locality = "rural"
            elif code in CORE:
                locality = "urban"
            elif code in NEAR:
                locality = _weighted(rng, [("urban", 85), ("township", 10), ("rural", 5)])
            else:
                locality = _weighted(rng, [("urban", 40), ("township", 30), ("rural", 30)])
            stage = "primary" if i < 2 else _weighted(rng, STAGES)
            enrollment = {section: rng.randint(*ENROLLMENT[(section, locality)]) for section in STAGE_SECTIONS[stage]}
            schools.append(School(code=f"{code}{i + 1:04d}", name=f"北京市{names[code]}第{i + 1}{STAGE_NAME[stage]}",
                                  district_code=code, stage=stage, locality=locality,
                                  primary=enrollment.get("primary", 0), junior=enrollment.get("junior", 0),
                                  senior=enrollment.get("senior", 0)))
    return schools


def _staff(rng: random.Random, sizes: Sizes, schools: list[School]) -> list[Staff]:
    per_school = _apportion(sizes.staff, [s.primary + s.junior + s.senior for s in schools], minimum=1)
    staff = []
    first_post, last_post = date(1992, 9, 1), date(2024, 9, 1)
    for index, (school, count) in enumerate(zip(schools, per_school)):
        sections = STAGE_SECTIONS[school.stage]
        weights = [getattr(school, section) for section in sections]
        for j in range(count):
            if j == 0:
                role = "principal"
            elif j <= 2 and count >= 30:
                role = "vice_principal"
            else:
                role = "middle_manager" if rng.random() < 0.04 else "teacher"
            retirement = _day(rng, date(2024, 7, 1), date(2040, 12, 31)) if rng.random() < 0.18 else None
            staff.append(Staff(
                staff_no=f"T{len(staff) + 1:07d}", name=_name(rng), school=index, role=role,
                section=rng.choices(sections, weights=weights)[0], subject=rng.choice(SUBJECTS),
                backbone=_weighted(rng, BACKBONE),
                # Recent arrivals are more common than old ones (square of a uniform draw).
                in_post_since=last_post - timedelta(days=int((last_post - first_post).days * rng.random() ** 1.6)),
                retirement_date=retirement))
    return staff


def _rotation_status(rng: random.Random, start: date, end: date) -> str:
    if end < AS_OF:
        return _weighted(rng, [("completed", 90), ("withdrawn", 10)])
    if start <= AS_OF:
        return _weighted(rng, [("active", 85), ("approved", 10), ("withdrawn", 5)])
    return _weighted(rng, [("planned", 50), ("approved", 45), ("withdrawn", 5)])


def _rotations(rng: random.Random, sizes: Sizes, schools: list[School], staff: list[Staff]) -> list[Rotation]:
    """One rotation per chosen person, a second (in another academic year) for about one in ten.
    Each stays inside its academic year, so one person's rotations never overlap."""
    by_district: dict[str, list[int]] = {}
    for i, school in enumerate(schools):
        by_district.setdefault(school.district_code, []).append(i)
    people = int(sizes.rotations / 1.1)
    chosen = rng.sample(range(len(staff)), min(people, len(staff)))
    years = [2020, 2021, 2022, 2023, 2024, 2025]
    year_weights = [6, 10, 15, 20, 34, 15]
    rotations: list[Rotation] = []
    queue = [(person, None) for person in chosen]
    extra = rng.sample(chosen, min(sizes.rotations - len(chosen), len(chosen)))
    queue += [(person, "second") for person in extra]
    taken: dict[int, int] = {}
    for person, second in queue:
        member = staff[person]
        home = schools[member.school]
        year = rng.choices(years, weights=year_weights)[0]
        if second is not None:
            year = rng.choice([y for y in years if y != taken[person]])
        taken.setdefault(person, year)
        mode = _weighted(rng, [("full_time", 55), ("part_time", 30), ("subject_guidance", 15)])
        if rng.random() < 0.7:
            start = date(year, 9, 1)
            end = date(year + 1, 8, 31) if mode == "full_time" or rng.random() < 0.5 else date(year + 1, 1, 31)
        else:
            start, end = date(year + 1, 2, 15), date(year + 1, 7, 15)
        pool = by_district[home.district_code] if rng.random() < 0.9 else range(len(schools))
        target = rng.choice(pool)
        while target == member.school:
            target = rng.choice(range(len(schools)))
        rotations.append(Rotation(staff=person, to_school=target, mode=mode, start=start, end=end,
                                  status=_rotation_status(rng, start, end)))
    return rotations


def _pairings(rng: random.Random, sizes: Sizes, schools: list[School]) -> list[Pairing]:
    """Urban leads (core districts help outer ones too) and distinct township/rural partners."""
    urban = [i for i, s in enumerate(schools) if s.locality == "urban"]
    partners = [i for i, s in enumerate(schools) if s.locality != "urban"]
    rng.shuffle(partners)
    pairings = []
    for partner in partners[:sizes.pairings]:
        same = [i for i in urban if schools[i].district_code == schools[partner].district_code]
        lead = rng.choice(same) if same and rng.random() < 0.7 else rng.choice(urban)
        start = date(rng.choice([2021, 2022, 2023, 2024]), 9, 1)
        end = date(start.year + 3, 8, 31)
        status = _weighted(rng, [("active", 75), ("suspended", 10), ("ended", 5), ("proposed", 10)])
        pairing = Pairing(lead=lead, partner=partner, start=start, end=end, status=status)
        if status != "proposed":
            last = min(end, date(2025, 6, 30))
            for n in range(rng.randint(4, 12)):
                kind = rng.choice(ACTIVITY_KINDS)
                students = rng.randint(0, 300) if kind in ("lesson_delivery", "student_exchange") else 0
                pairing.activities.append((kind, _day(rng, start, last), f"结对活动第{n + 1}次", rng.randint(1, 40),
                                           students))
        pairings.append(pairing)
    return pairings


def _studios(rng: random.Random, sizes: Sizes, schools: list[School], staff: list[Staff]) -> list[Studio]:
    hosts = [i for i, m in enumerate(staff) if m.backbone in ("municipal", "special_grade") and m.role == "teacher"]
    outer = [code for code, _ in BEIJING_DISTRICTS if code not in CORE | NEAR]
    studios = []
    for host in rng.sample(hosts, min(sizes.studios, len(hosts))):
        home = schools[staff[host].school].district_code
        district = home if rng.random() < 0.7 else rng.choice(outer)
        start = date(rng.choice([2022, 2023, 2024]), 9, 1)
        end = date(start.year + 3, 8, 31)
        members = rng.sample([i for i in rng.sample(range(len(staff)), 30) if i != host][:20], rng.randint(6, 10))
        sessions = []
        for n in range(rng.randint(8, 16)):
            day = _day(rng, start, min(end, date(2025, 6, 30)))
            attendees = sorted(rng.sample(members, rng.randint(1, len(members))))
            sessions.append((rng.choice(SESSION_KINDS), f"工作室研修第{n + 1}次", f"{day.isoformat()}T14:00:00+08:00",
                             rng.choice(["1.5", "2", "2.5", "3", "4"]), attendees))
        studios.append(Studio(host=host, district_code=district, kind=_weighted(rng, STUDIO_KINDS),
                              subject=staff[host].subject, start=start, end=end, members=members, sessions=sessions))
    return studios


def _credits(rng: random.Random, sizes: Sizes, n_staff: int) -> Credits:
    """Each person has an intensity (how much training they do), so some complete the 360-hour bar
    and some do not; dates spread over ~7.5 years, so the 5-year window cuts through them."""
    intensity = [rng.choice((0.2, 0.6, 1.0, 1.0, 1.2, 1.5, 2.0)) for _ in range(n_staff)]
    total = sizes.credits
    days = (CREDIT_LAST - CREDIT_FIRST).days + 1
    dates = [(CREDIT_FIRST + timedelta(days=d)).isoformat() for d in range(days)]
    return Credits(
        staff=rng.choices(range(n_staff), weights=intensity, k=total),
        hours=rng.choices([h for h, _ in CREDIT_HOURS], weights=[w for _, w in CREDIT_HOURS], k=total),
        earned_on=rng.choices(dates, k=total),
        source=rng.choices([s for s, _ in CREDIT_SOURCES], weights=[w for _, w in CREDIT_SOURCES], k=total))


def generate(scale: float = 1.0, seed: int = SEED) -> Dataset:
    sizes = Sizes.at(scale)
    rng = random.Random(seed)
    schools = _schools(rng, sizes)
    staff = _staff(rng, sizes, schools)
    rotations = _rotations(rng, sizes, schools, staff)
    pairings = _pairings(rng, sizes, schools)
    studios = _studios(rng, sizes, schools, staff)
    credits = _credits(rng, sizes, len(staff))
    # Retired by the time of AS_OF: set after everything else is loaded (rotations need active staff).
    retirees = [i for i, m in enumerate(staff) if m.retirement_date is not None and m.retirement_date < AS_OF]
    return Dataset(sizes=sizes, districts=list(BEIJING_DISTRICTS), schools=schools, staff=staff,
                   rotations=rotations, pairings=pairings, studios=studios, credits=credits, retirees=retirees,
                   policies=POLICIES)
