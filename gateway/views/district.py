"""`GET /api/v1/districts/{code}/overview`: where a district stands against the national bars.

Partnership, rotation and training figures and the backbone balance (design.md §4), composed
from the services' internal figures called concurrently. A service that cannot be reached costs
only its part (null, named in `degraded`); the answer stays 200.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from gateway.exports import XLSX, export_format, overview_rows, spreadsheet
from gateway.views.figures import district_blocks, figures
from gateway.views.period import resolve_period
from gateway.views.schemas import DistrictOverview, DistrictRef
from services.common.auth import CurrentUser
from services.common.errors import NotFound, problem_responses

router = APIRouter(prefix="/api/v1", tags=["views"])


DistrictCodePath = Annotated[str, Path(pattern=r"^[0-9]{6}$", examples=["110105"],
                                       description="GB/T 2260 district code")]
AcademicYearQuery = Annotated[int | None, Query(
    ge=1900, le=2998, description="Start year: 2024 means 1 Sept 2024 – 31 Aug 2025; defaults to the "
                                  "academic year containing as_of", examples=[2024])]
AsOfQuery = Annotated[date | None, Query(description="Date of the coverage, eligibility and balance "
                                                     "figures; defaults to today (China Standard Time)")]

OVERVIEW_DESCRIPTION = """
One call tells a district where it stands against the national bars:

* `partnership` — coverage of township and rural schools on `as_of`, activities dated in
  the academic year (by kind too);
* `rotation` — rotation rate for the academic year, backbone share, with the district's
  policy targets and whether they are met;
* `training` — completion of the 360-hour bar on `as_of` among active staff, studio figures
  for the academic year;
* `balance` — backbone balance on `as_of` per section (primary, junior).

Rates are rounded half up to 4 decimals, `mean` and `cv` to 6 decimals, and only at presentation:
the arithmetic is exact. A rate is null when its denominator is 0; `cv` is null when the mean is 0.
When a service cannot be reached its part is null and its name is in `degraded` (status 200);
`balance` is rotation's: it sums the placement over its copy of the school registry.

The services keep the figures they computed until a write changes what those figures read.
`Cache-Control: no-cache` has every figure computed afresh (the same answer, at a higher cost).
"""


@router.get("/districts/{code}/overview", response_model=DistrictOverview,
            responses={**problem_responses(403, 404),
                       200: {"content": {"text/csv": {}, XLSX: {}},
                             "description": "The overview (JSON, or a CSV/XLSX sheet of 类别/指标/数值)"}},
            summary="A district against the national bars",
            description=OVERVIEW_DESCRIPTION)
async def district_overview(code: DistrictCodePath, request: Request, principal: CurrentUser,
                            academic_year: AcademicYearQuery = None, as_of: AsOfQuery = None,
                            format: Annotated[str | None, Query(
                                description="csv or xlsx for a spreadsheet (or send Accept: text/csv)")] = None):
    principal.require_read_in(code)
    fmt = export_format(request)
    period = resolve_period(as_of, academic_year)
    answers = await figures(request, period, code)
    got = answers.of

    row = None
    if got.partnership is not None:
        row = next((r for r in got.partnership if r.district_code == code), None)
        if row is None:
            raise NotFound(f"district {code} does not exist", slug="district-not-found")
    overview = DistrictOverview(
        district=DistrictRef(code=code, name=row.name if row is not None else None), academic_year=period.academic_year,
        period_from=period.period_from, period_to=period.period_to, as_of=period.as_of,
        **district_blocks(got, code, row), degraded=answers.degraded)
    if fmt is not None:
        return await spreadsheet(overview_rows(overview.model_dump(mode="json")), fmt,
                                 f"overview-{code}-{period.academic_year}", columns=["block", "metric", "value"])
    return overview
