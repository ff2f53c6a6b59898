"""The sync facade: one background event-loop thread per process.

Front-ends are synchronous (the CLI, magics, widget callbacks); the core is
async. ``run(coro)`` runs a coroutine on the shared loop thread and waits; the
naming rule is that every public async core function has exactly one sync
caller, through ``run``, never a copied twin. Ctrl-C while waiting cancels the
coroutine and lets its cleanup finish before re-raising.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()

CANCEL_GRACE = 30.0


def loop() -> asyncio.AbstractEventLoop:
    """The shared loop, started on first use in a daemon thread."""
    global _loop
    with _lock:
        if _loop is None:
            new = asyncio.new_event_loop()
            thread = threading.Thread(target=new.run_forever, name="sindri-loop",
                                      daemon=True)
            thread.start()
            _loop = new
        return _loop


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Start ``coro`` on the loop thread without waiting (deploys in notebooks)."""
    return asyncio.run_coroutine_threadsafe(coro, loop())


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the loop thread and wait for its result."""
    future = submit(coro)
    try:
        return future.result()
    except KeyboardInterrupt:
        future.cancel()
        try:
            future.result(timeout=CANCEL_GRACE)
        except (concurrent.futures.CancelledError, concurrent.futures.TimeoutError):
            pass
        except Exception:  # noqa: BLE001 - the interrupt is what the user must see
            pass
        raise
