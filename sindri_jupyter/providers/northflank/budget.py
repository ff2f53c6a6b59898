"""The account's request budget and the poll interval that respects it.

Northflank allows 1000 requests an hour per account, in a fixed window that
resets one hour after its first request; every answer carries
``x-ratelimit-limit``, ``x-ratelimit-remaining`` and ``x-ratelimit-reset``
(seconds). The shared HTTP layer (``core.http.RateLimits``) keeps the latest
values; this module turns them into a poll interval:

- never below ``MIN_INTERVAL`` (12 s), so one ten-minute wait costs at most
  50 status requests, within the 60 the issue allows;
- the environments being polled in this process share what is left of the
  window, minus a reserve for creates, deletes and user commands:
  ``interval = pollers * reset / (remaining - reserve)``. Ten environments in a
  fresh window poll every 40 s each (900 an hour together); as the window
  drains the interval grows, and an empty window waits for its reset.

Pollers are counted per account (token digest) across every provider in the
process, because the budget is the account's, not one provider's.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable

from sindri_jupyter.core.http import RateLimits

MIN_INTERVAL = 12.0  # seconds; 600 s / 12 s = 50 polls per ten-minute wait
MAX_INTERVAL = 3600.0
DEFAULT_LIMIT = 1000  # requests per window, until a header says otherwise
DEFAULT_WINDOW = 3600.0  # seconds
RESERVE = 0.1  # share of the limit kept for non-polling calls
POLLER_TTL = 180.0  # a handle not polled for this long no longer counts

_lock = threading.Lock()
_pollers: dict[str, dict[str, float]] = {}  # account -> handle key -> last poll


def account_key(base_url: str, token: str) -> str:
    """A name for the account's budget that does not reveal the token."""
    digest = hashlib.sha256(token.encode()).hexdigest()[:16]
    return f"{base_url.rstrip('/')}#{digest}"


class Budget:
    """Reads the rate-limit window and paces polling for one account."""

    def __init__(self, account: str, rate_limits: RateLimits,
                 clock: Callable[[], float]) -> None:
        self.account = account
        self.rate_limits = rate_limits
        self.clock = clock

    def note_poll(self, handle_key: str) -> None:
        """Record that ``handle_key`` was just polled (called by ``get``)."""
        now = self.clock()
        with _lock:
            seen = _pollers.setdefault(self.account, {})
            seen[handle_key] = now
            for key, last in list(seen.items()):
                if now - last > POLLER_TTL:
                    del seen[key]

    def forget(self, handle_key: str) -> None:
        with _lock:
            _pollers.get(self.account, {}).pop(handle_key, None)

    def pollers(self) -> int:
        now = self.clock()
        with _lock:
            seen = _pollers.get(self.account, {})
            return max(1, sum(1 for last in seen.values() if now - last <= POLLER_TTL))

    def window(self) -> tuple[int, int, float]:
        """(limit, remaining, seconds to reset), defaults before any answer."""
        found = self.rate_limits.windows().get("x-ratelimit")
        if found is None or found.remaining is None:
            return DEFAULT_LIMIT, DEFAULT_LIMIT, DEFAULT_WINDOW
        limit = found.quota or DEFAULT_LIMIT
        return limit, found.remaining, found.reset_in(self.clock())

    def poll_interval(self) -> float:
        """Seconds between two status polls of one environment."""
        limit, remaining, reset_in = self.window()
        usable = remaining - RESERVE * limit
        if usable < 1:
            return min(MAX_INTERVAL, max(MIN_INTERVAL, reset_in + 1.0))
        interval = self.pollers() * max(reset_in, 1.0) / usable
        return min(MAX_INTERVAL, max(MIN_INTERVAL, interval))

    def describe(self) -> str:
        limit, remaining, reset_in = self.window()
        return (f"{remaining}/{limit} requests left, window resets in "
                f"{reset_in:.0f} s, {self.pollers()} environment(s) polling")
