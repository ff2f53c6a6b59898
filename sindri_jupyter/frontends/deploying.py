"""``%sindri deploy`` without blocking the notebook.

The deploy runs on the shared loop thread (``sync.submit``); the cell returns
at once and the progress panel keeps moving. Deploys started in this kernel are
remembered by name, so ``%%sindri run NAME`` waits for one still under way and
raises its error if it failed, instead of failing with "not ready".
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from dataclasses import dataclass
from typing import Any

from sindri_jupyter.errors import SindriError
from sindri_jupyter.frontends import display
from sindri_jupyter.frontends.progress import DeployProgress, DeployState

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
# The ticker also stops on its own after this long, whatever happens to the deploy.
TICK_LIMIT_SECONDS = 4 * 3600.0


@dataclass
class Deployment:
    """A deploy started from this kernel: its future and its progress panel."""

    name: str
    future: concurrent.futures.Future
    progress: DeployProgress

    def wait(self) -> Any:
        """Block until it ends; Ctrl-C cancels it (its cleanup still runs)."""
        try:
            return self.future.result()
        except KeyboardInterrupt:
            self.future.cancel()
            raise


_inflight: dict[str, Deployment] = {}
_lock = threading.Lock()


def pending(name: str) -> Deployment | None:
    """The deploy of ``name`` started in this kernel, if it has not ended yet."""
    with _lock:
        found = _inflight.get(name)
    return found if found is not None and not found.future.done() else None


def latest(name: str) -> Deployment | None:
    with _lock:
        return _inflight.get(name)


def start(config, config_path: str | None, *, wait_ready: bool,
          widgets: bool | None = None, engine_factory=None) -> Deployment:
    """Show the progress panel in this cell and start the deploy in the background."""
    progress = DeployProgress(DeployState(config.name, provider=config.provider),
                              widgets=widgets)
    progress.show()
    factory = engine_factory or _engine
    future = display.submit(_run(factory, config, config_path, wait_ready, progress))
    deployment = Deployment(config.name, future, progress)
    with _lock:
        _inflight[config.name] = deployment
    return deployment


def _engine():
    from sindri_jupyter.core.engine import Engine

    return Engine()


async def _run(factory, config, config_path, wait_ready: bool, progress: DeployProgress):
    engine = factory()
    ticker = asyncio.ensure_future(_tick(progress))
    try:
        record = await engine.deploy(config, config_path=config_path, wait=wait_ready,
                                     on_event=progress.on_event)
    except asyncio.CancelledError:
        progress.finish("failed", SindriError(
            "the deploy was interrupted",
            hint=f"`%sindri status {config.name}` shows what is recorded"))
        raise
    except BaseException as exc:
        # Shown in the panel of the cell that started it; the future keeps it too.
        progress.finish("failed", exc)
        log.debug("deploy of %s failed: %r", config.name, exc)
        raise
    finally:
        ticker.cancel()
        await engine.aclose()
    progress.finish("ready" if record.phase == "ready" else "created")
    return record


async def _tick(progress: DeployProgress) -> None:
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + TICK_LIMIT_SECONDS
    while not progress.state.done and loop.time() < stop_at:
        progress.tick()
        await asyncio.sleep(TICK_SECONDS)
