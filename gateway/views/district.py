"""`GET /api/v1/districts/{code}/overview`: where a district stands against the national bars.

Partnership, rotation and training figures and the backbone balance (design.md §4), composed
from the services' internal figures called concurrently. A service that cannot be reached costs
only its part (null, named in `degraded`); the answer stays 200.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from gateway.clients import (
    BalanceTotals,
    Completion,
    PartnershipClient,
    PartnershipRow,
    RotationClient,
    RotationStats,
    StudioStats,
    TrainingClient,
)
from gateway.exports import XLSX, export_format, overview_rows, spreadsheet
from gateway.views import blocks, calls
from gateway.views.period import resolve_period
from gateway.views.schemas import DistrictOverview, DistrictRef
from services.common.auth import CurrentUser
from services.common.errors import NotFound, problem_responses

router = APIRouter(prefix="/api/v1", tags=["views"])


@dataclass(frozen=True)
class DistrictFigures:
    """The answers a district overview is composed from; None where the service could not answer."""

    partnership: list[PartnershipRow] | None
    rotation: RotationStats | None
    balance: BalanceTotals | None
    studios: StudioStats | None
    completion: Completion | None


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
    partnership = PartnershipClient.of(request)
    rotation = RotationClient.of(request)
    training = TrainingClient.of(request)

    answers = await calls.settle_into(DistrictFigures, {
        "partnership": partnership.stats(as_of=period.as_of, period_from=period.period_from,
                                         period_to=period.period_to, district_code=code),
        "rotation": rotation.stats(academic_year=period.academic_year, district_code=code),
        # §4.6 summed by rotation over its school directory (partnership's registry, from its feed):
        # no school list crosses over, as in the city view.
        "balance": rotation.balance_totals(as_of=period.as_of, district_code=code),
        "studios": training.studio_stats(academic_year=period.academic_year, district_code=code),
        # §4.5 counted by training from its staff directory (fed by rotation) and its ledger.
        "completion": training.completion(as_of=period.as_of, district_code=code),
    })
    got = answers.of

    name = None
    partnership_block = None
    if got.partnership is not None:
        rows = [row for row in got.partnership if row.district_code == code]
        if not rows:
            raise NotFound(f"district {code} does not exist", slug="district-not-found")
        name = rows[0].name
        partnership_block = blocks.partnership_block(rows[0])
    rotation_block = blocks.rotation_block(got.rotation.row(code)) if got.rotation is not None else None
    training_block = None
    if got.studios is not None and got.completion is not None:
        training_block = blocks.training_block(got.studios.row(code), got.completion.row(code))
    balance_block = None
    if got.balance is not None:
        balance_block = blocks.balance_summary_from_totals(got.balance.of(code))
    overview = DistrictOverview(
        district=DistrictRef(code=code, name=name), academic_year=period.academic_year,
        period_from=period.period_from, period_to=period.period_to, as_of=period.as_of,
        partnership=partnership_block, rotation=rotation_block, training=training_block,
        balance=balance_block, degraded=answers.degraded)
    if fmt is not None:
        return await spreadsheet(overview_rows(overview.model_dump(mode="json")), fmt,
                                 f"overview-{code}-{period.academic_year}", columns=["block", "metric", "value"])
    return overview
