"""Per-request context shared by logging, error rendering and the change feed.

`request_id_var` is set by the request middleware; `actor_var` (the token's `sub`) where the
request is authenticated. Both are stamped on every change-feed row the request writes, so an
integrator can tell who caused a change and quote the request that did it.
"""

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
actor_var: ContextVar[str | None] = ContextVar("actor", default=None)
