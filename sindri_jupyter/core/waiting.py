"""Deadlines, back-off and progress: the only place sindri waits.

Every wait has a deadline, reports progress through ``Events``, and backs off
between polls. Phase budgets live in ``Timeouts`` and nowhere else.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sindri_jupyter.errors import ConfigError, WaitTimeout

T = TypeVar("T")


def env_seconds(name: str, default: float) -> float:
    """A positive number of seconds from the environment, or ``default``."""
    value = os.environ.get(name)
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ConfigError([f"{name}={value!r}: not a positive number of seconds"],
                          hint=f"unset {name} to use {default:g} s, or set e.g. "
                          f"{name}={default:g}")
    return seconds


@dataclass(frozen=True)
class Timeouts:
    """Seconds each phase may take; ``SINDRI_TIMEOUT_<PHASE>`` overrides."""

    provision: float = field(default_factory=lambda: env_seconds(
        "SINDRI_TIMEOUT_PROVISION", 1200.0))
    ssh: float = field(default_factory=lambda: env_seconds("SINDRI_TIMEOUT_SSH", 180.0))
    kernel: float = field(default_factory=lambda: env_seconds(
        "SINDRI_TIMEOUT_KERNEL", 120.0))
    stop: float = field(default_factory=lambda: env_seconds("SINDRI_TIMEOUT_STOP", 300.0))


@dataclass(frozen=True)
class Event:
    """One progress report; front-ends render these."""

    name: str
    phase: str
    message: str
    elapsed: float = 0.0
    state: str | None = None
    price_per_hour: float | None = None
    eta: float | None = None


Listener = Callable[[Event], None]


class Backoff:
    """Poll intervals growing from ``first`` to ``cap`` with a little jitter."""

    def __init__(self, first: float = 1.0, factor: float = 1.5, cap: float = 10.0):
        self.first, self.factor, self.cap = first, factor, cap
        self._next = first

    def next(self) -> float:
        current = self._next
        self._next = min(self.cap, self._next * self.factor)
        return current * random.uniform(0.9, 1.1)

    def reset(self) -> None:
        self._next = self.first


async def poll(
    probe: Callable[[], Awaitable[T | None]],
    *,
    phase: str,
    deadline: float,
    backoff: Backoff,
    what: str,
    hint: str | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    pace: Callable[[], float] | None = None,
) -> T:
    """Call ``probe`` until it returns something, or raise WaitTimeout.

    ``pace`` is the provider's own lower bound between polls (a rate-limit
    budget shared by many waits); it is asked again before every sleep.
    """
    start = time.monotonic()
    while True:
        result = await probe()
        if result is not None:
            return result
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeout(
                f"{what} did not happen within {time.monotonic() - start:.0f} s",
                phase=phase, hint=hint,
            )
        interval = backoff.next()
        if pace is not None:
            interval = max(interval, pace())
        await sleep(min(interval, left))
