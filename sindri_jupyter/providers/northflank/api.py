"""The one boundary between sindri and Northflank's API.

Every call goes through the official SDK (``northflank.AsyncApiClient``) on an
``httpx.AsyncClient`` that carries the shared HTTP policy of ``core.http``
(``RetryTransport``: idempotent retries, ``Retry-After``, rate-limit headers).
Two things here are not the SDK:

- ``_NoSecondRetry`` wraps the transport. The SDK repeats *every* request,
  POST included, three more times on any ``httpx.HTTPError`` (``endpoint.
  _aretry``); stacked on the shared policy that would repeat a create blindly.
  Transport errors therefore leave the transport as ``Unanswered``, which the
  SDK does not catch.
- ``logs`` uses plain httpx on the same client: the SDK's only REST log call
  (``client.logs.fetch_service_logs``) is synchronous, goes through urllib
  (bypassing the shared policy and the rate-limit bookkeeping) and turns an
  unreadable answer into an empty list.

SDK and transport errors become the core's typed errors in ``translate``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from northflank import ApiCallError, AsyncApiClient, ConfigurationError

from sindri_jupyter.core.http import (
    HttpTimeouts,
    RateLimits,
    RetryPolicy,
    RetryTransport,
    Sleep,
)
from sindri_jupyter.errors import (
    AuthError,
    CapacityError,
    OutcomeUnknownError,
    ProviderAPIError,
    RateLimitError,
)
from sindri_jupyter.providers.northflank.budget import Budget, account_key

log = logging.getLogger(__name__)

PROVIDER = "northflank"
DEFAULT_BASE_URL = "https://api.northflank.com"
TOKEN_HINT = ("create an API token under Team > Settings > API > Tokens and "
              "export NORTHFLANK_API_TOKEN=...")
CAPACITY_WORDS = ("capacity", "unschedulable", "no available nodes",
                  "insufficient credits")


class Unanswered(Exception):
    """A request left without an answer; ``sent`` says whether it may have arrived."""

    def __init__(self, request: httpx.Request, cause: httpx.TransportError):
        super().__init__(f"{request.method} {request.url.path}: {cause!r}")
        self.method = request.method
        self.cause = cause
        self.sent = not isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout))


class _NoSecondRetry(httpx.AsyncBaseTransport):
    """Hides transport errors from the SDK's own blind retry loop."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self.inner.handle_async_request(request)
        except httpx.TransportError as exc:
            raise Unanswered(request, exc) from exc

    async def aclose(self) -> None:
        await self.inner.aclose()


class NorthflankApi:
    """The SDK client, its httpx client and the account's request budget."""

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        policy: RetryPolicy | None = None,
        sleep: Sleep | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.rate_limits = RateLimits()
        timeouts = HttpTimeouts()
        retry = RetryTransport(transport, policy=policy, deadline=timeouts.deadline,
                               rate_limits=self.rate_limits, sleep=sleep, clock=clock)
        self.http = httpx.AsyncClient(
            timeout=timeouts.as_httpx(), transport=_NoSecondRetry(retry),
            follow_redirects=False)
        self.sdk = AsyncApiClient(
            api_token=token, base_url=self.base_url, async_http_client=self.http,
            user_agent="sindri-jupyter", timeout=timeouts.read)
        self.budget = Budget(account_key(self.base_url, token), self.rate_limits, clock)

    def __repr__(self) -> str:  # the token stays out of reprs and tracebacks
        return f"NorthflankApi({self.base_url!r})"

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(self, what: str, endpoint: Callable[..., Awaitable[Any]],
                   **kwargs: Any) -> Any:
        """``await endpoint(**kwargs)`` and return its ``data``; errors typed."""
        try:
            response = await endpoint(**kwargs)
        except (ApiCallError, ConfigurationError, Unanswered) as exc:
            raise translate(exc, what, self.budget) from exc
        return response.data

    async def call_all(self, what: str, endpoint: Any, key: str,
                       **kwargs: Any) -> list[dict[str, Any]]:
        """Every item of a paginated list (one request per page of 100)."""
        try:
            response = await endpoint.all(per_page=100, **kwargs)
        except (ApiCallError, ConfigurationError, Unanswered) as exc:
            raise translate(exc, what, self.budget) from exc
        if response.error is not None:
            raise translate(response.error, what, self.budget)
        data = response.data
        return list(data.get(key, [])) if isinstance(data, dict) else list(data or [])

    async def logs(self, project_id: str, service_id: str,
                   lines: int = 20) -> list[str]:
        """The last ``lines`` runtime log lines, oldest first (plain httpx)."""
        url = f"{self.base_url}/v1/projects/{project_id}/services/{service_id}/logs"
        params = {"queryType": "range", "type": "runtime", "lineLimit": str(lines),
                  "direction": "backward", "duration": "3600"}
        try:
            response = await self.http.get(
                url, params=params, headers={"Authorization": f"Bearer {self._token}",
                                             "Accept": "application/json"})
        except Unanswered as exc:
            raise translate(exc, "read the service logs", self.budget) from exc
        if response.status_code >= 400:
            raise translate(_error_of(response), "read the service logs", self.budget)
        entries = response.json().get("data")
        if isinstance(entries, dict):  # tolerate {"data": {"logs": [...]}}
            entries = entries.get("logs", [])
        text = [str(e.get("log", "")) for e in entries or [] if isinstance(e, dict)]
        return list(reversed(text))


def _error_of(response: httpx.Response) -> ApiCallError:
    try:
        body = response.json().get("error") or {}
    except ValueError:
        body = {}
    return ApiCallError(status=response.status_code,
                        message=body.get("message") or response.text[:200],
                        id=body.get("id"), details=body.get("details"))


def translate(exc: Exception, what: str, budget: Budget | None = None) -> Exception:
    """The core error for an SDK or transport failure while trying to ``what``."""
    if isinstance(exc, ConfigurationError):
        return AuthError(f"cannot {what}: no API token", provider=PROVIDER,
                         status=None, hint=TOKEN_HINT)
    if isinstance(exc, Unanswered):
        if exc.sent and exc.method in ("POST", "PATCH"):
            return OutcomeUnknownError(
                f"{what}: the request was sent but no answer came ({exc.cause!r})",
                provider=PROVIDER,
                hint="the change may have happened; `sindri status` looks it up")
        return ProviderAPIError(f"cannot {what}: {exc.cause!r}", provider=PROVIDER,
                                status=None, hint="check the network and "
                                "SINDRI_NORTHFLANK_API_URL, then try again")
    if not isinstance(exc, ApiCallError):
        raise TypeError(f"translate() got {type(exc).__name__}") from exc
    return _from_status(exc, what, budget)


def _from_status(exc: ApiCallError, what: str, budget: Budget | None) -> Exception:
    status, message = exc.status, exc.message or "no message"
    detail = str(exc.details) if exc.details else None
    common = {"provider": PROVIDER, "status": status, "request_id": exc.id, "detail": detail}
    text = f"cannot {what}: {message}" + (f" {detail}" if detail else "")
    if status == 401:
        return AuthError(text, hint="Northflank refused the token; it may be wrong "
                         "or expired: " + TOKEN_HINT, **common)
    if status == 403:
        return AuthError(text, hint=f"the token's API role may not {what}; grant the "
                         "permission to its role or use a team token", **common)
    if status == 429:
        wait = budget.window()[2] if budget is not None else 3600.0
        return RateLimitError(text, hint=f"the account's request budget (1000 an "
                              f"hour) is spent; it resets in about {wait:.0f} s. Ask "
                              "support@northflank.com for a higher limit if this "
                              "repeats", **common)
    if any(word in message.lower() for word in CAPACITY_WORDS):
        return CapacityError(text, hint="try another region or GPU type, or top up "
                             "credits (Team > Billing)", **common)
    if status >= 500:
        return ProviderAPIError(text, hint="Northflank had a server error; try again "
                                "in a minute", **common)
    return ProviderAPIError(text, hint=_hint_4xx(status), **common)


def _hint_4xx(status: int) -> str | None:
    if status == 404:
        return "it no longer exists on Northflank; `sindri status --all` reconciles"
    if status == 409:
        return "a resource with the same id exists or is in the wrong state"
    if status == 400:
        return "Northflank rejected the request; check the northflank section"
    return None

