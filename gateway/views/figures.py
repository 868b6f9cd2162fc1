"""The five figure calls both overviews make, and one district's blocks from their answers.

The district overview asks them for one district, the city overview for all at once (a bounded
number of calls whatever the number of districts); either way no list of ids or schools crosses
between services: the balance is §4.6 summed by rotation over its school directory, completion is
§4.5 counted by training from its staff directory and its ledger.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

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
from gateway.views.period import Period


@dataclass(frozen=True)
class Figures:
    """The answers an overview is composed from; None where the service could not answer."""

    partnership: list[PartnershipRow] | None
    rotation: RotationStats | None
    balance: BalanceTotals | None
    completion: Completion | None
    studios: StudioStats | None


async def figures(request: Request, period: Period, district_code: str | None) -> calls.Answers[Figures]:
    """The five calls at once, for one district or (None) all of them."""
    partnership = PartnershipClient.of(request)
    rotation = RotationClient.of(request)
    training = TrainingClient.of(request)
    return await calls.settle_into(Figures, {
        "partnership": partnership.stats(as_of=period.as_of, period_from=period.period_from,
                                         period_to=period.period_to, district_code=district_code),
        "rotation": rotation.stats(academic_year=period.academic_year, district_code=district_code),
        "balance": rotation.balance_totals(as_of=period.as_of, district_code=district_code),
        "completion": training.completion(as_of=period.as_of, district_code=district_code),
        "studios": training.studio_stats(academic_year=period.academic_year, district_code=district_code),
    })


def district_blocks(got: Figures, code: str, partnership_row: PartnershipRow | None) -> dict:
    """The `partnership`, `rotation`, `training` and `balance` blocks of one district; a block is
    None where its service could not answer (`partnership_row` None: that block is None)."""
    training = None
    if got.studios is not None and got.completion is not None:
        training = blocks.training_block(got.studios.row(code), got.completion.row(code))
    return {
        "partnership": blocks.partnership_block(partnership_row) if partnership_row is not None else None,
        "rotation": blocks.rotation_block(got.rotation.row(code)) if got.rotation is not None else None,
        "training": training,
        "balance": blocks.balance_summary_from_totals(got.balance.of(code)) if got.balance is not None else None,
    }
