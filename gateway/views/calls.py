"""Concurrent upstream calls for the composed views: all at once, so a view costs its slowest call;
`settle` lets a call fail alone (its service named as degraded), `all_of` needs every answer.
`settle_into` is `settle` with typed answers: the view declares a dataclass with one field per call
(its client's return type, or None), so no view reads an untyped `dict` of answers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Generic, TypeVar

from services.common.errors import DomainError, UpstreamUnavailable
from services.common.settings import SERVICES


@dataclass
class Settled:
    """Answers of concurrent calls; a call whose service was unavailable is absent and its
    service is named in `failed`."""

    values: dict[str, Any] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)
    failed_calls: dict[str, str] = field(default_factory=dict)

    def ok(self, *names: str) -> bool:
        return all(name in self.values for name in names)

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def degraded(self) -> list[str]:
        return [name for name in SERVICES if name in self.failed]


R = TypeVar("R")


@dataclass(frozen=True)
class Answers(Generic[R]):
    """The typed answers of `settle_into`."""

    of: R                 # one field per call; None where the call's service could not answer
    degraded: list[str]   # those services, in the order of SERVICES


def _service_of(exc: UpstreamUnavailable) -> str:
    return str(exc.extra.get("upstream", "unknown"))


async def settle(calls: Mapping[str, Awaitable[Any]]) -> Settled:
    """Run every call at once (the answer costs the slowest call, not the sum). An unavailable
    service costs only the parts that need it; any other error (403, 404, …) is raised."""
    names = list(calls)
    results = await asyncio.gather(*calls.values(), return_exceptions=True)
    settled = Settled()
    errors: list[BaseException] = []
    for name, result in zip(names, results):
        if isinstance(result, UpstreamUnavailable):
            service = _service_of(result)
            settled.failed.add(service)
            settled.failed_calls[name] = service
        elif isinstance(result, BaseException):
            errors.append(result)
        else:
            settled.values[name] = result
    if errors:
        raise _most_telling(errors)
    return settled


async def settle_into(record: type[R], calls: Mapping[str, Awaitable[Any]]) -> Answers[R]:
    """`settle`, answered as `record` (a dataclass whose fields are the calls' names). The calls a
    view makes this way never answer None themselves, so None means "could not be had"."""
    names = [f.name for f in fields(record)]  # type: ignore[arg-type]
    if sorted(names) != sorted(calls):
        raise TypeError(f"{record.__name__} declares {sorted(names)}, the calls are {sorted(calls)}")
    settled = await settle(calls)
    return Answers(of=record(**{name: settled.values.get(name) for name in names}), degraded=settled.degraded())


def _most_telling(errors: list[BaseException]) -> BaseException:
    """The caller's own problem (403, 404, 422) before anything else."""
    domain = sorted((e for e in errors if isinstance(e, DomainError)), key=lambda e: e.status)
    return domain[0] if domain else errors[0]


async def all_of(calls: Mapping[str, Awaitable[Any]]) -> dict[str, Any]:
    """Run every call at once when the view needs all of them: an unavailable service is a 503."""
    names = list(calls)
    results = await asyncio.gather(*calls.values(), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        # Prefer the caller's own problem; otherwise the first unavailable service.
        raise _most_telling(errors)
    return dict(zip(names, results))
