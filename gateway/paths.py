"""The upstream path of a proxied request: the caller's path, normalised, under the service's `/v1`.

Dot segments never get this far (services/common/middleware.py refuses them before routing). What
is forwarded is the path the route table saw, spelled one way (services/common/paths.py): the raw
path keeps an encoded `/`, `?` or `#` inside a code encoded, where the decoded path would let it be
re-read as URL syntax on the way upstream.
"""

from __future__ import annotations

from fastapi import Request

from services.common.errors import NotFound
from services.common.paths import normalised

PUBLIC_PREFIX = b"/api/v1/"


def upstream_path(request: Request) -> str:
    """`/api/v1/<rest>` → `/v1/<rest>`. A prefix that is itself percent-encoded (`/api%2Fv1/…`)
    is not this API's path, whatever it decodes to."""
    raw_path: bytes = request.scope.get("raw_path") or request.scope["path"].encode("utf-8", "replace")
    if not raw_path.startswith(PUBLIC_PREFIX):
        raise NotFound(f"no resource at {request.scope['path']}", slug="not-found")
    return "/v1/" + normalised(raw_path[len(PUBLIC_PREFIX):])
