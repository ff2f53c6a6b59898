"""The lifecycle engine's waits, paced by ``NorthflankProvider.poll_interval``.

Deploys run through ``Engine.deploy`` (not a hand loop) in simulated time: the
engine's ``sleep``, the HTTP layer's retry sleep, the provider's budget and the
fake's rate-limit window all read one ``VirtualTime``, which jumps to the next
wake-up only when every deploy is asleep. An hour of ten waits takes seconds.
The waits never end on their own (the rollout takes days); the hour ends them.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable

import pytest

from sindri_jupyter.config import loads
from sindri_jupyter.core.engine import Engine
from sindri_jupyter.core.http import RetryPolicy
from sindri_jupyter.core.waiting import Timeouts
from sindri_jupyter.providers.northflank import NorthflankProvider, budget
from sindri_jupyter.providers.northflank.api import NorthflankApi
from sindri_jupyter.testing.fake_northflank import FakeNorthflank

TOKEN = "test-token"
FOREVER = 10 ** 6  # seconds: the rollout and the engine's provision deadline


class VirtualTime:
    """A clock that moves only when every task it drives is asleep."""

    def __init__(self, start: float = 5000.0) -> None:
        self.now = start
        self._sleepers: list[tuple[float, int, asyncio.Future]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        wake = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds),
                                        next(self._order), wake))
        await wake

    async def drive(self, coros: list[Awaitable], seconds: float) -> None:
        """Run ``coros`` for ``seconds`` of simulated time, then cancel them."""
        tasks = [asyncio.ensure_future(c) for c in coros]
        end = self.now + seconds
        try:
            while True:
                await asyncio.sleep(0.001)  # let woken tasks reach their next sleep
                busy = sum(1 for t in tasks if not t.done())
                if busy == 0:
                    break
                if len(self._sleepers) < busy:
                    continue  # someone is between sleeps (an HTTP call)
                wake, _, future = heapq.heappop(self._sleepers)
                if wake > end:
                    break
                self.now = max(self.now, wake)
                future.set_result(None)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:  # a deploy that failed must fail the test, not vanish
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()


@pytest.fixture(autouse=True)
def no_pollers_left_over():
    """Pollers are counted per account across providers; tests start clean."""
    budget._pollers.clear()
    yield
    budget._pollers.clear()


def gpu_config(name: str):
    return loads(
        f"name: {name}\n"
        "deployment:\n  provider: northflank\n"
        "  image: pytorch/pytorch:2.0.1-cuda11.8-cudnn8-runtime\n"
        "  resources: {gpu: {type: L4, count: 1}}\n"
        "providers:\n  northflank: {project_name: research}\n", "sindri.yaml", {})


def engine_for(fake: FakeNorthflank, time: VirtualTime) -> Engine:
    api = NorthflankApi(TOKEN, fake.url, sleep=time.sleep, clock=time,
                        policy=RetryPolicy(max_attempts=3, base_delay=0.5))
    provider = NorthflankProvider(api=api, executable="northflank-not-needed")
    return Engine(providers={"northflank": provider}, sleep=time.sleep,
                  timeouts=Timeouts(provision=FOREVER, ssh=60, kernel=60, stop=60))


def waits(count: int, seconds: float) -> tuple[FakeNorthflank, list[str]]:
    """Deploy ``count`` environments at once and let them wait ``seconds``."""
    time = VirtualTime()
    with FakeNorthflank(tokens=(TOKEN,), progress_seconds=FOREVER, clock=time) as fake:
        engine = engine_for(fake, time)
        names = [f"env-{i}" for i in range(count)]

        async def go():
            try:
                await time.drive([engine.deploy(gpu_config(n)) for n in names], seconds)
            finally:
                await engine.aclose()

        asyncio.run(go())
    return fake, names


def gets_per_service(fake: FakeNorthflank) -> dict[str, int]:
    seen: dict[str, int] = {}
    for r in fake.requests:
        if r.op == "get_service":
            service = r.path.rstrip("/").rsplit("/", 1)[-1]
            seen[service] = seen.get(service, 0) + 1
    return seen


def test_ten_environments_waiting_an_hour_through_the_engine_stay_in_budget():
    fake, names = waits(10, 3600)

    polled = gets_per_service(fake)
    assert len(fake.requests) <= 1000
    assert not [r for r in fake.requests if r.status == 429]
    assert sorted(polled) == sorted(names)
    assert min(polled.values()) >= 40  # each still looked at every ~90 s or less


def test_one_ten_minute_wait_through_the_engine_costs_at_most_60_requests():
    fake, _ = waits(1, 600)

    polls = sum(gets_per_service(fake).values())
    assert len(fake.requests) <= 60 + 10  # the polls plus the deploy's own calls
    assert 10 <= polls <= 60
