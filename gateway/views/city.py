"""`GET /api/v1/city/overview`: every district against the national bars, for city-wide roles.

Built from the services' all-districts aggregates (no `district_code`), so it costs the same
five upstream calls whether the city has one district or sixteen, and none of them carries a list
of ids: training counts completion per district from its own staff directory and ledger.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request

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
from gateway.views import blocks, calls
from gateway.views.district import AcademicYearQuery, AsOfQuery
from gateway.views.period import resolve_period
from gateway.views.schemas import CityDistrictRow, CityOverview
from services.common.auth import CurrentUser
from services.common.errors import Forbidden, problem_responses

router = APIRouter(prefix="/api/v1", tags=["views"])


@dataclass(frozen=True)
class CityFigures:
    """The all-districts answers the city overview is composed from; None where the service could
    not answer."""

    partnership: list[PartnershipRow] | None
    rotation: RotationStats | None
    balance: BalanceTotals | None
    completion: Completion | None
    studios: StudioStats | None


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
    partnership = PartnershipClient.of(request)
    rotation = RotationClient.of(request)
    training = TrainingClient.of(request)
    answers = await calls.settle_into(CityFigures, {
        "partnership": partnership.stats(as_of=period.as_of, period_from=period.period_from,
                                         period_to=period.period_to),
        "rotation": rotation.stats(academic_year=period.academic_year),
        # §4.6 summed by rotation per district from its school directory and placements: no school
        # registry and no placement list crosses over.
        "balance": rotation.balance_totals(as_of=period.as_of),
        "completion": training.completion(as_of=period.as_of),
        "studios": training.studio_stats(academic_year=period.academic_year),
    })
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

    rows = []
    for code, name in names.items():
        training_block = None
        if got.studios is not None and got.completion is not None:
            training_block = blocks.training_block(got.studios.row(code), got.completion.row(code))
        rows.append(CityDistrictRow(
            code=code, name=name,
            partnership=blocks.partnership_block(partnership_rows[code]) if code in partnership_rows else None,
            rotation=blocks.rotation_block(got.rotation.row(code)) if got.rotation is not None else None,
            training=training_block,
            balance=(blocks.balance_summary_from_totals(got.balance.of(code))
                     if got.balance is not None else None)))
    return CityOverview(academic_year=period.academic_year, period_from=period.period_from,
                        period_to=period.period_to, as_of=period.as_of, districts=rows,
                        degraded=answers.degraded)
