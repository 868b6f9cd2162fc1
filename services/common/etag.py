"""ETags on single resources: GET answers one, If-None-Match gives 304, a stale If-Match 412.

A resource's ETag is its row version (`"v3"`), bumped on every change. The If-Match comparison
happens in the service after the row is locked, so two writers cannot both pass the check.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Request, Response

from services.common.errors import PreconditionFailed

NOT_MODIFIED = {304: {"description": "Not modified (If-None-Match names the current ETag)"}}


def etag(version: int) -> str:
    return f'"v{version}"'


def _tags(header: str) -> list[str]:
    return [part.strip().removeprefix("W/") for part in header.split(",") if part.strip()]


def expected_version(if_match: str | None) -> int | None:
    """The version an If-Match header asks for; None when absent or `*`."""
    if if_match is None or if_match.strip() == "*":
        return None
    versions = []
    for tag in _tags(if_match):
        if tag.startswith('"v') and tag.endswith('"') and tag[2:-1].isdigit():
            versions.append(int(tag[2:-1]))
    if len(versions) != 1:
        raise PreconditionFailed("If-Match must carry exactly one ETag this API issued",
                                 slug="precondition-failed")
    return versions[0]


def require_version(expected: int | None, current: int) -> None:
    if expected is not None and expected != current:
        raise PreconditionFailed(f"the resource changed: If-Match {etag(expected)} but it is now {etag(current)}",
                                 slug="stale-etag", extra={"current_etag": etag(current)})


IfMatch = Annotated[str | None, Header(alias="If-Match", description="ETag from a previous GET; 412 if stale")]


def conditional(request: Request, response: Response, version: int) -> Response | None:
    """Set the ETag; answer 304 when the client's If-None-Match already names this version."""
    tag = etag(version)
    response.headers["ETag"] = tag
    if_none_match = request.headers.get("if-none-match")
    if if_none_match and (if_none_match.strip() == "*" or tag in _tags(if_none_match)):
        return Response(status_code=304, headers={"ETag": tag})
    return None
