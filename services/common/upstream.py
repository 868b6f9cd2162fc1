"""A long-lived, typed-by-the-caller HTTP client for one upstream service.

One `httpx.AsyncClient` per upstream, made once in the lifespan (httpx warns against a client per
request), with explicit timeouts and pool limits, a circuit breaker so a dead service costs nothing
after a few failures, and bounded jittered retries for idempotent reads only. Bulk uploads take
their own path (`upload`): streamed, with their own deadline, and outside the breaker's count.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterable, Callable, Collection, Mapping
from datetime import date
from typing import Any
from urllib.parse import urlencode

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from services.common.context import fresh_var, request_id_var
from services.common.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    Unauthorized,
    Unprocessable,
    UpstreamUnavailable,
    problem_type,
)
from services.common.middleware import Metrics
from services.common.tracing import client_span, set_response_status


class CircuitBreaker:
    """Closed -> open after `failures` consecutive failures; one trial call after `cooldown` s."""

    def __init__(self, failures: int, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.failures = failures
        self.cooldown = cooldown
        self._clock = clock
        self._consecutive = 0
        self._opened_at: float | None = None

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half_open" if self._clock() - self._opened_at >= self.cooldown else "open"

    def allow(self) -> bool:
        return self.state != "open"

    def record_success(self) -> None:
        self._consecutive = 0
        self._opened_at = None

    def record_failure(self) -> None:
        self._consecutive += 1
        if self._consecutive >= self.failures or self._opened_at is not None:
            self._opened_at = self._clock()


# Idle keep-alive connections are dropped before uvicorn's 5 s idle close, so a request is never
# written to a connection the server is closing at that moment.
KEEPALIVE_EXPIRY = 4.0


class _AiohttpTransport(AiohttpTransport):
    """httpx-aiohttp maps every aiohttp connection error (refused, reset, server gone) to
    `ConnectTimeout`; here only a timeout is a timeout, so the breaker and the retry of a read
    see the same failures as with httpx's own transport."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.ConnectTimeout as exc:
            cause = exc.__cause__
            if cause is None or isinstance(cause, TimeoutError):
                raise
            error = httpx.ConnectError if isinstance(cause, aiohttp.ClientConnectorError) else httpx.ReadError
            raise error(f"{type(cause).__name__}: {cause}", request=request) from cause


def pooled_transport(kind: str, connections: int) -> httpx.AsyncBaseTransport | None:
    """The connection pool under the httpx API. "aiohttp" (the default) cost about a fifth less
    gateway CPU per proxied request than httpx's own pool (encode/httpx#3215), measured with
    benchmarks/hop.py; "httpx" (None here) keeps httpx's own."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections,
                          keepalive_expiry=KEEPALIVE_EXPIRY)
    return _AiohttpTransport(limits=limits) if kind == "aiohttp" else None


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _ServiceClient(httpx.AsyncClient):
    """An httpx client that keeps no cookies. One client carries every caller's requests to a
    service, so a cookie kept from one answer would go out with the next caller's request; and
    reading each answer's headers into a cookie jar was 4% of the gateway's CPU per call."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._none = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._none

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        raise TypeError("calls to a service carry no cookies")


_PLAIN = (str, int, float, date)


def plain_query(params: Any) -> str | None:
    """`?a=1&b=x` for parameters httpx would write the same way (str, int, float or date values;
    "" for none), None for anything else (None, bools, lists: httpx's own rules then apply)."""
    if not params:
        return ""
    if not isinstance(params, Mapping) or not all(
            isinstance(value, _PLAIN) and not isinstance(value, bool) for value in params.values()):
        return None
    return "?" + urlencode({name: str(value) for name, value in params.items()})


class Upstream:
    def __init__(self, name: str, base_url: str, *, timeout: float, connections: int = 20,
                 breaker: CircuitBreaker | None = None, transport: httpx.AsyncBaseTransport | None = None,
                 token: Callable[[], str] | None = None, metrics: Metrics | None = None,
                 read_retries: int = 1, pool: str = "aiohttp") -> None:
        self.name = name
        self.breaker = breaker or CircuitBreaker(failures=3, cooldown=5.0)
        self._token = token
        self._metrics = metrics
        self._read_retries = read_retries
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections,
                              keepalive_expiry=KEEPALIVE_EXPIRY)
        # The client's own transport, kept here: calls go to it directly (`_exchange`).
        self._transport = transport or pooled_transport(pool, connections) or httpx.AsyncHTTPTransport(limits=limits)
        self.client = _ServiceClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 1.0)),
            limits=limits,
            transport=self._transport,
        )
        # `origin + path` is an absolute URL, which httpx takes as it is (no merge with base_url).
        self.origin = str(self.client.base_url).rstrip("/")
        self._extensions = {"timeout": self.client.timeout.as_dict()}

    async def aclose(self) -> None:
        await self.client.aclose()

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.upstream.labels(self._metrics.process, self.name, outcome).inc()

    def _unavailable(self, why: str) -> UpstreamUnavailable:
        return unavailable(self.name, why)

    async def send(self, method: str, path: str, *, params: Any = None, json: Any = None,
                   content: bytes | None = None, headers: Mapping[str, str] | None = None,
                   breaker: bool = True) -> httpx.Response:
        """One call through the breaker. Transport failures and 5xx but 503 count against the upstream;
        transport failures raise `UpstreamUnavailable`, HTTP statuses are returned as they are.
        `breaker=False` (background pollers with their own back-off, such as the feed consumers)
        neither consults nor feeds the breaker, so a producer still starting up cannot open the
        circuit for the requests that need it."""
        if breaker and not self.breaker.allow():
            self._count("short_circuit")
            raise self._unavailable("circuit open")
        request_headers = self._with_token(headers)
        # The call continues the current trace (`traceparent`, services/common/tracing.py).
        with client_span(f"{method} {self.name}", upstream=self.name, method=method,
                         headers=request_headers) as span:
            response = await self._attempts(method, path, params=params, json=json, content=content,
                                            headers=request_headers, breaker=breaker)
            set_response_status(span, response.status_code)
            return response

    async def _attempts(self, method: str, path: str, *, params: Any, json: Any, content: bytes | None,
                        headers: dict[str, str], breaker: bool) -> httpx.Response:
        attempts = 1 + (self._read_retries if method in ("GET", "HEAD") else 0)
        for attempt in range(attempts):
            try:
                response = await self._exchange(method, path, params=params, json=json, content=content,
                                                headers=headers)
            except httpx.InvalidURL as exc:
                raise Unprocessable(f"the request path cannot be forwarded: {exc}", slug="invalid-path") from None
            except (httpx.TimeoutException, TimeoutError):
                # A timeout already spent the caller's budget: do not retry it.
                if breaker:
                    self.breaker.record_failure()
                self._count("timeout")
                raise self._unavailable("timed out") from None
            except httpx.TransportError as exc:
                self._count("error")
                if attempt + 1 < attempts:
                    await asyncio.sleep(random.uniform(0.02, 0.08))
                    continue
                # One failure per call, not per attempt: a retry of the same call is no second
                # piece of evidence, and counting it opened the circuit (for the whole cooldown)
                # after a single overview's calls to a service that was back a moment later.
                if breaker:
                    self.breaker.record_failure()
                raise self._unavailable(type(exc).__name__) from None
            if response.status_code == 503:
                # A prompt 503 (its database is down; Retry-After says when to come back) is an
                # answer, not a dead or hung upstream: it neither opens the circuit nor closes it,
                # so the service is asked again the moment its database returns.
                self._count("5xx")
            elif response.status_code >= 500:
                if breaker:
                    self.breaker.record_failure()
                self._count("5xx")
            else:
                if breaker:
                    self.breaker.record_success()
                self._count("ok")
            return response
        raise self._unavailable("no attempt made")  # pragma: no cover

    async def _exchange(self, method: str, path: str, *, params: Any, json: Any, content: bytes | None,
                        headers: dict[str, str]) -> httpx.Response:
        """One request and its whole answer, straight through the transport. `AsyncClient.request`
        around it (auth, redirects, cookies, event hooks: none of which a call to a service uses)
        was half the gateway's cost of forwarding a GET above aiohttp's own (py-spy). The client's
        `base_url` and timeouts still apply; an absolute URL under `origin` is taken as it is."""
        # An absolute URL (the proxy's, its query string included) or a service path with plain
        # parameters (every figure call) is parsed once, not three or four times as the client
        # would (base_url merge, parameters merged in): 118 -> 45 us a call.
        query = plain_query(params)
        url = path if path.startswith(self.origin + "/") else self.origin + path if path.startswith("/") else None
        if json is None and query is not None and url is not None and not (query and "?" in url):
            request = httpx.Request(method, url + query, content=content, headers=headers,
                                    extensions=self._extensions)
        else:
            request = self.client.build_request(method, path, params=params, json=json, content=content,
                                                headers=headers)
        response = await self._transport.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def upload(self, path: str, body: AsyncIterable[bytes], *, timeout: float, params: Any = None,
                     headers: Mapping[str, str] | None = None) -> httpx.Response:
        """POST a bulk upload, streaming `body` to the upstream as it arrives.

        The call timeout bounds a call that should answer at once; a 32 MiB file takes longer to
        send than that, so an upload has its own deadline (`timeout`) for the body transfer and
        the first answer. Its outcome is never counted by the breaker: a slow upload says nothing
        about whether the service answers calls, and an open breaker must not fail the next
        imports while the first carries on unseen. An already open breaker is still respected."""
        if not self.breaker.allow():
            self._count("short_circuit")
            raise self._unavailable("circuit open")
        request_headers = self._with_token(headers)
        limits = httpx.Timeout(timeout, connect=self.client.timeout.connect, pool=self.client.timeout.pool)
        try:
            async with asyncio.timeout(timeout):
                with client_span(f"POST {self.name}", upstream=self.name, method="POST",
                                 headers=request_headers) as span:
                    response = await self.client.request("POST", path, params=params, content=body,
                                                         headers=request_headers, timeout=limits)
                    set_response_status(span, response.status_code)
        except httpx.InvalidURL as exc:
            raise Unprocessable(f"the request path cannot be forwarded: {exc}", slug="invalid-path") from None
        except (TimeoutError, httpx.TimeoutException):
            self._count("upload_timeout")
            raise self._unavailable("upload timed out") from None
        except httpx.TransportError as exc:
            self._count("upload_error")
            raise self._unavailable(type(exc).__name__) from None
        self._count("5xx" if response.status_code >= 500 else "ok")
        return response

    def _with_token(self, headers: Mapping[str, str] | None) -> dict[str, str]:
        """The caller's headers, plus the service's own token when none is given and the current
        request's id (X-Request-ID), so one id follows a request through every service it reaches
        and its logs and feed rows can be matched up (background work has none and sends none)."""
        request_headers = dict(headers or {})
        names = {k.lower() for k in request_headers}
        if self._token is not None and "authorization" not in names:
            request_headers["Authorization"] = f"Bearer {self._token()}"
        request_id = request_id_var.get()
        if request_id and "x-request-id" not in names:
            request_headers["X-Request-ID"] = request_id
        if fresh_var.get():  # the caller asked for figures computed afresh: so do the services
            request_headers["Cache-Control"] = "no-cache"
        return request_headers

    async def call_json(self, method: str, path: str, *, params: Any = None, json: Any = None,
                        headers: Mapping[str, str] | None = None, allow_404: bool = False, breaker: bool = True,
                        refusals: Collection[int] = ()) -> Any:
        """The one way to call a service for a JSON answer (typed clients of the services and of
        the gateway build on it). With `allow_404`, "no such resource" gives None — a 404, or a
        redirect (a path that names no resource at all, such as an empty code). A status in
        `refusals` is the caller's own problem, raised as such (`refusal`): the gateway forwards
        its caller's token, so the service's 401/403 (and a 422 on a body the caller wrote) are the
        caller's answer. Anything else that is not a 2xx JSON answer means the upstream cannot be
        relied on."""
        response = await self.send(method, path, params=params, json=json, headers=headers, breaker=breaker)
        status = response.status_code
        if allow_404 and (status == 404 or 300 <= status < 400):
            return None
        if status in refusals:
            raise refusal(response)
        if not 200 <= status < 300:
            raise self._unavailable(f"answered {status}")
        try:
            return response.json()
        except ValueError:
            raise self._unavailable("answered a body that is not JSON") from None

    async def get_json(self, path: str, *, params: Any = None, headers: Mapping[str, str] | None = None,
                       allow_404: bool = False, breaker: bool = True) -> Any:
        """`call_json` of a GET, as the services' own clients and the feed consumer read."""
        return await self.call_json("GET", path, params=params, headers=headers, allow_404=allow_404,
                                    breaker=breaker)


def unavailable(name: str, why: str) -> UpstreamUnavailable:
    """503 naming the upstream that cannot be relied on (`upstream` in the problem)."""
    return UpstreamUnavailable(f"the {name} service is unavailable ({why})",
                               slug="upstream-unavailable", extra={"upstream": name})


# A refused caller's problem: its fields besides these are the problem's extensions (`errors`, …).
_PROBLEM_FIELDS = frozenset({"type", "title", "status", "detail", "request_id", "instance"})
_REFUSALS: dict[int, type[DomainError]] = {401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
                                           422: Unprocessable}


def refusal(response: httpx.Response) -> DomainError:
    """The upstream's refusal of the caller as the caller's own problem. 401 and 403 keep the
    service's `detail` under the slugs `unauthorized` and `district-scope` (a service refuses a
    forwarded token for its scope); any other status keeps the service's problem whole (slug,
    title, detail and extensions such as `errors`)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    status = response.status_code
    detail = body.get("detail") or "outside your districts"
    if status == 401:
        return Unauthorized(detail, slug="unauthorized")
    if status == 403:
        return Forbidden(detail, slug="district-scope")
    kind, prefix = str(body.get("type") or ""), problem_type("")
    slug = kind.removeprefix(prefix) if kind.startswith(prefix) else None
    error = _REFUSALS.get(status, DomainError)
    return error(str(body.get("detail") or error.title), slug=slug, title=body.get("title"),
                 extra={key: value for key, value in body.items() if key not in _PROBLEM_FIELDS})

def segment(value: str) -> str:
    """One path segment for an upstream URL: every reserved character percent-encoded, and the
    dot segments `.`/`..` too, which URL normalisation would otherwise resolve away."""
    from urllib.parse import quote

    encoded = quote(value, safe="")
    return encoded.replace(".", "%2E") if set(value) <= {"."} else encoded
