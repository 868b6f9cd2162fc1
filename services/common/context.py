"""Per-request context shared by logging, error rendering and the change feed.

`request_id_var` is set by the request middleware; `actor_var` (the token's `sub`) and
`role_var` (its `role`) where the request is authenticated. They are stamped on every change-feed
row and audit event the request writes (services/common/outbox.py, services/common/audit.py), so
an integrator can tell who caused a change and quote the request that did it; the access log
line carries the `sub` too.

`fresh_var` is true when the caller sent `Cache-Control: no-cache`: figures are computed afresh
rather than served from the kept answers (services/common/kept_answers.py), and every call the
request makes to another service asks the same (services/common/upstream.py).
"""

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
actor_var: ContextVar[str | None] = ContextVar("actor", default=None)
role_var: ContextVar[str | None] = ContextVar("role", default=None)
fresh_var: ContextVar[bool] = ContextVar("fresh", default=False)
