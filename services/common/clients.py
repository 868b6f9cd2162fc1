"""How a service reaches a typed client of another service, one way for all three.

The long-lived `Upstream` (one pooled httpx client, breaker, timeouts) is made by the lifespan of
`create_service_app`, and so is the typed client over it (`clients={"partnership": PartnershipClient}`
there); routes take it with `Annotated[PartnershipClient, upstream_client("partnership")]`. Jobs,
which have no app, wrap `context.upstreams[name]` (the worker's long-lived upstreams) the same way.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request


def upstream_client(name: str) -> Any:
    """The dependency giving the typed client of `name` the lifespan made."""
    async def client(request: Request) -> Any:
        return request.app.state.clients[name]

    return Depends(client)
