"""`GET /api/v1/city/overview`: every district against the national bars, for city-wide roles.

Built from the services' all-districts aggregates (no `district_code`), so it costs the same
five upstream calls whether the city has one district or sixteen, and none of them carries a list
of ids: training counts completion per district from its own staff directory and ledger.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from gateway.views.district import AcademicYearQuery, AsOfQuery
from gateway.views.figures import district_blocks, figures
from gateway.views.period import resolve_period
from gateway.views.schemas import CityDistrictRow, CityOverview
from services.common.auth import CurrentUser
from services.common.errors import Forbidden, problem_responses

router = APIRouter(prefix="/api/v1", tags=["views"])


@router.get("/city/overview", response_model=CityOverview, responses=problem_responses(403),
            summary="Every district against the national bars (city-wide roles)",
            description="One row per district with the `partnership`, `rotation`, `training` and `balance` "
                        "blocks of the district overview (same rules, rounding and nulls), from a bounded "
                        "number of upstream calls whatever the number of districts. A service that cannot "
                        "be reached leaves its blocks null in every row and is named in `degraded`.")
async def city_overview(request: Request, principal: CurrentUser, academic_year: AcademicYearQuery = None,
                        as_of: AsOfQuery = None) -> CityOverview:
    if not principal.city_wide:
        raise Forbidden("the city overview needs a city-wide role", slug="role")
    period = resolve_period(as_of, academic_year)
    answers = await figures(request, period, None)
    got = answers.of

    # Districts: the registry's, or, with partnership down, every district another service knows.
    names: dict[str, str | None] = {}
    partnership_rows = {}
    if got.partnership is not None:
        partnership_rows = {row.district_code: row for row in got.partnership}
        names = {code: row.name for code, row in partnership_rows.items()}
    else:
        known: set[str] = set()
        if got.rotation is not None:
            known |= {row.district_code for row in got.rotation.districts}
        if got.completion is not None:
            known |= {row.district_code for row in got.completion.districts}
        if got.studios is not None:
            known |= {row.district_code for row in got.studios.districts}
        names = dict.fromkeys(sorted(known))

    rows = [CityDistrictRow(code=code, name=name, **district_blocks(got, code, partnership_rows.get(code)))
            for code, name in names.items()]
    return CityOverview(academic_year=period.academic_year, period_from=period.period_from,
                        period_to=period.period_to, as_of=period.as_of, districts=rows,
                        degraded=answers.degraded)
