"""The shared HTTP policy of every provider adapter that speaks HTTP.

One place decides how long to wait, what to retry and how to read rate limits:

- ``HttpTimeouts``: per-phase timeouts (connect, read, write, pool) and the
  overall deadline of one logical request including its retries.
- ``RetryPolicy``: which attempts are repeated. Only idempotent methods (GET,
  HEAD, OPTIONS, PUT, DELETE) are retried, on connect errors, 5xx and 429,
  with capped exponential backoff and full jitter. ``Retry-After`` (seconds or
  HTTP date) is honoured. POST is never retried here: a create is repeated only
  by the engine, after looking the resource up.
- ``RateLimits``: the latest ``RateLimit`` / ``RateLimit-Policy`` windows (IETF
  draft, used by RunPod) and ``x-ratelimit-*`` (used by Northflank), readable
  by the caller, e.g. to slow polling before a 1000/hour budget runs out.

``make_client`` builds an ``httpx.AsyncClient`` with all of it. Sleeping and
the clock are injectable so tests never really sleep.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

# A stale keep-alive connection closed by the server shows up as
# RemoteProtocolError before any answer; for idempotent calls that is as safe
# to repeat as a refused connect.
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class HttpTimeouts:
    """Timeouts in seconds, one per phase; the defaults live only here."""

    connect: float = 10.0
    read: float = 30.0
    write: float = 30.0
    pool: float = 10.0
    # Overall budget of one logical request, all retries and waits included.
    deadline: float = 90.0

    def as_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect, read=self.read, write=self.write, pool=self.pool
        )


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently idempotent requests are repeated."""

    max_attempts: int = 5  # first try included
    base_delay: float = 0.5  # seconds, doubled per attempt before jitter
    max_delay: float = 20.0  # seconds, cap of one backoff step

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        return rng.uniform(0.0, ceiling)


@dataclass(frozen=True)
class Window:
    """One rate-limit window as last reported by the server."""

    name: str
    remaining: int | None = None
    reset: float | None = None  # seconds until reset, as of ``observed_at``
    quota: int | None = None
    length: float | None = None  # window length in seconds
    observed_at: float = 0.0  # monotonic clock of the response

    def reset_in(self, now: float) -> float:
        if self.reset is None:
            return 0.0
        return max(0.0, self.reset - (now - self.observed_at))


_MEMBER = re.compile(r'\s*(?:"([^"]*)"|([A-Za-z0-9_.*-]+))((?:\s*;\s*[^,;]+)*)')


def _members(value: str) -> list[tuple[str, dict[str, str]]]:
    """Parse a structured-field list such as ``"minute";r=1;t=2, "hour";r=3``."""
    out = []
    for part in value.split(","):
        match = _MEMBER.match(part)
        if not match:
            continue
        name = match.group(1) if match.group(1) is not None else match.group(2)
        params = {}
        for item in match.group(3).split(";"):
            key, sep, val = item.strip().partition("=")
            if sep:
                params[key.strip()] = val.strip().strip('"')
        out.append((name, params))
    return out


def _num(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


class RateLimits:
    """The latest windows seen in responses; safe to read from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, Window] = {}

    def windows(self) -> dict[str, Window]:
        with self._lock:
            return dict(self._windows)

    def update(self, headers: httpx.Headers, now: float) -> None:
        found: dict[str, dict[str, float | None]] = {}
        for name, params in _members(headers.get("ratelimit", "")):
            found.setdefault(name, {}).update(
                remaining=_num(params.get("r")), reset=_num(params.get("t"))
            )
        for name, params in _members(headers.get("ratelimit-policy", "")):
            found.setdefault(name, {}).update(
                quota=_num(params.get("q")), length=_num(params.get("w"))
            )
        if "x-ratelimit-remaining" in headers:
            found["x-ratelimit"] = {
                "remaining": _num(headers.get("x-ratelimit-remaining")),
                "reset": _num(headers.get("x-ratelimit-reset")),
                "quota": _num(headers.get("x-ratelimit-limit")),
            }
        with self._lock:
            for name, values in found.items():
                self._windows[name] = _merge(self._windows.get(name), name, values, now)

    def exhausted_wait(self, now: float) -> float:
        """Seconds until every exhausted window has reset (the longest wins)."""
        waits = [
            w.reset_in(now) for w in self.windows().values() if w.remaining == 0
        ]
        return max(waits, default=0.0)


def _merge(
    old: Window | None, name: str, values: dict[str, float | None], now: float
) -> Window:
    def pick(key: str) -> float | None:
        if values.get(key) is not None:
            return values[key]
        return getattr(old, key) if old is not None else None

    remaining, quota = pick("remaining"), pick("quota")
    return Window(
        name=name,
        remaining=int(remaining) if remaining is not None else None,
        reset=pick("reset"),
        quota=int(quota) if quota is not None else None,
        length=pick("length"),
        observed_at=now,
    )


def parse_retry_after(value: str | None, now_wall: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None or when.tzinfo is None:
        return None
    now_wall = time.time() if now_wall is None else now_wall
    return max(0.0, when.timestamp() - now_wall)


def mask_authorization(value: str | None) -> str:
    """What the logs may show of an Authorization header: its scheme only."""
    if not value:
        return "none"
    scheme = value.split(" ", 1)[0]
    return f"{scheme} ***" if " " in value else "***"


class RetryTransport(httpx.AsyncBaseTransport):
    """Wraps another transport with the retry policy, rate limits and logging.

    ``clock`` is monotonic seconds and ``sleep`` an awaitable; tests pass fakes
    so that backoff is observed, not waited for.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport | None = None,
        *,
        policy: RetryPolicy | None = None,
        deadline: float = HttpTimeouts.deadline,
        rate_limits: RateLimits | None = None,
        sleep: Sleep | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.inner = inner or httpx.AsyncHTTPTransport()
        self.policy = policy or RetryPolicy()
        self.deadline = deadline
        self.rate_limits = rate_limits if rate_limits is not None else RateLimits()
        self.sleep: Sleep = sleep or asyncio.sleep
        self.clock = clock
        self.rng = rng or random.Random()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        retryable = request.method.upper() in IDEMPOTENT_METHODS
        attempts = self.policy.max_attempts if retryable else 1
        give_up_at = self.clock() + self.deadline
        for attempt in range(1, attempts + 1):
            response, error = await self._attempt(request, attempt)
            if error is not None:
                if not isinstance(error, RETRYABLE_ERRORS):
                    raise error
                delay = self.policy.backoff(attempt - 1, self.rng)
            elif not _retryable_status(response.status_code):
                return response
            else:
                delay = self._delay_after(response, attempt)
            if attempt == attempts or self.clock() + delay > give_up_at:
                break
            if response is not None:
                await response.aclose()
            await self.sleep(delay)
        log.debug("no more tries for %s %s (%d made)", request.method, request.url,
                  attempt)
        if error is not None:
            raise error
        return response

    async def _attempt(
        self, request: httpx.Request, attempt: int
    ) -> tuple[httpx.Response | None, Exception | None]:
        started = self.clock()
        auth = mask_authorization(request.headers.get("authorization"))
        try:
            response = await self.inner.handle_async_request(request)
        except httpx.TransportError as exc:
            log.debug("%s %s -> %s after %.0f ms (try %d, auth %s)", request.method,
                      request.url, type(exc).__name__,
                      (self.clock() - started) * 1000, attempt, auth)
            return None, exc
        self.rate_limits.update(response.headers, self.clock())
        log.debug("%s %s -> %d in %.0f ms (try %d, auth %s, request id %s)",
                  request.method, request.url, response.status_code,
                  (self.clock() - started) * 1000, attempt, auth,
                  response.headers.get("x-request-id", "-"))
        return response, None

    def _delay_after(self, response: httpx.Response, attempt: int) -> float:
        delay = self.policy.backoff(attempt - 1, self.rng)
        hinted = parse_retry_after(response.headers.get("retry-after"))
        if hinted is not None:
            delay = hinted
        if response.status_code == 429:
            delay = max(delay, self.rate_limits.exhausted_wait(self.clock()))
        return delay

    async def aclose(self) -> None:
        await self.inner.aclose()


def _retryable_status(status: int) -> bool:
    return status == 429 or 500 <= status <= 599


def make_client(
    base_url: str,
    *,
    token: str | None = None,
    timeouts: HttpTimeouts | None = None,
    policy: RetryPolicy | None = None,
    rate_limits: RateLimits | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Sleep | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.AsyncClient:
    """An AsyncClient with the shared policy; pass ``rate_limits`` to read them.

    ``transport`` is the inner transport (e.g. ``httpx.MockTransport`` or one
    bound to a socket); the retry layer always wraps it.
    """
    timeouts = timeouts or HttpTimeouts()
    all_headers = {"User-Agent": "sindri-jupyter", "Accept": "application/json"}
    all_headers.update(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    retry = RetryTransport(
        transport,
        policy=policy,
        deadline=timeouts.deadline,
        rate_limits=rate_limits,
        sleep=sleep,
    )
    return httpx.AsyncClient(
        base_url=base_url,
        headers=all_headers,
        timeout=timeouts.as_httpx(),
        transport=retry,
        follow_redirects=False,
    )
