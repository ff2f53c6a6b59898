"""The 1000-requests-an-hour budget: polling pace, many environments, and 429.

Time is simulated: the fake and the provider read the same hand-moved clock,
so an hour of polling runs in a second and the fake's rate-limit window is real.
"""

from __future__ import annotations

import pytest

from sindri_jupyter.core.types import Handle, State
from sindri_jupyter.errors import RateLimitError
from sindri_jupyter.providers.northflank import budget
from sindri_jupyter.testing.fake_northflank import FakeNorthflank
from tests.test_northflank_provider import (
    Clock,
    closing,
    config,
    handle,
    provider_for,
    run,
)


@pytest.fixture(autouse=True)
def no_pollers_left_over():
    """Pollers are counted per account across providers; tests start clean."""
    budget._pollers.clear()
    yield
    budget._pollers.clear()


async def wait_all(provider, clock: Clock, handles: list[Handle],
                   seconds: float) -> None:
    """Poll every handle whenever the provider's interval says it is due."""
    due = {h.marker: clock.now for h in handles}
    by_marker = {h.marker: h for h in handles}
    end = clock.now + seconds
    while True:
        marker = min(due, key=due.get)
        if due[marker] >= end:
            return
        clock.now = due[marker]
        seen = await provider.get(by_marker[marker])
        assert seen.state is not State.GONE
        due[marker] = clock.now + provider.poll_interval(by_marker[marker])


def test_a_ten_minute_wait_costs_at_most_60_requests():
    clock = Clock()
    with FakeNorthflank(progress_seconds=10_000, clock=clock) as fake:
        provider = provider_for(fake)

        async def deploy_and_wait():
            made = await provider.create(config(), handle())
            before = len(fake.requests)
            await wait_all(provider, clock, [made], 600)
            return len(fake.requests) - before

        spent = run(closing(provider, deploy_and_wait()))

    assert spent <= 60
    assert not [r for r in fake.requests if r.status == 429]


def test_ten_environments_waiting_an_hour_stay_inside_the_budget():
    clock = Clock()
    with FakeNorthflank(progress_seconds=100_000, clock=clock) as fake:
        provider = provider_for(fake)

        async def ten():
            made = [await provider.create(config(f"env-{i}"), handle(f"env-{i}", f"m{i}"))
                    for i in range(10)]
            await wait_all(provider, clock, made, 3599)

        run(closing(provider, ten()))

    gets = fake.count("get_service")
    assert len(fake.requests) <= 1000
    assert not [r for r in fake.requests if r.status == 429]
    assert gets >= 10 * 60  # each environment was still looked at every ~6 min or less


def test_interval_grows_as_the_window_drains():
    clock = Clock()
    with FakeNorthflank(rate_limit=100, clock=clock) as fake:
        provider = provider_for(fake)

        async def drain():
            made = await provider.create(config(), handle())
            fresh = provider.poll_interval(made)
            half = None
            while provider.api().budget.window()[1] > 9:  # down to the reserve
                await provider.get(made)
                if half is None and provider.api().budget.window()[1] <= 50:
                    half = provider.poll_interval(made)
            return fresh, half, provider.poll_interval(made)

        fresh, half, drained = run(closing(provider, drain()))

    assert budget.MIN_INTERVAL <= fresh < half < drained
    assert drained >= 3600 - 1  # under the reserve: wait for the window's reset
    assert not [r for r in fake.requests if r.status == 429]


def test_a_429_with_retry_after_is_waited_out_for_reads():
    clock = Clock()
    with FakeNorthflank(clock=clock) as fake:
        provider = provider_for(fake)

        async def throttled():
            made = await provider.create(config(), handle())
            fake.inject("get_service", status=429, retry_after=1, times=1)
            return await provider.get(made)

        seen = run(closing(provider, throttled()))

    assert seen.state is State.RUNNING
    assert [r.status for r in fake.requests if r.op == "get_service"][-2:] == [429, 200]


def test_persistent_429_becomes_a_rate_limit_error_with_the_reset_time():
    with FakeNorthflank() as fake:
        provider = provider_for(fake)
        fake.inject("list_plans", status=429, retry_after=1, times=10)

        with pytest.raises(RateLimitError) as caught:
            run(closing(provider, provider.plan(config())))

    assert caught.value.status == 429
    assert "resets in about" in caught.value.hint
    assert fake.count("list_plans") == 3  # the test policy's max attempts


def test_a_throttled_create_is_not_repeated():
    with FakeNorthflank() as fake:
        provider = provider_for(fake)
        fake.inject("create_service", status=429, retry_after=1)

        with pytest.raises(RateLimitError):
            run(closing(provider, provider.create(config(), handle())))

    assert fake.count("create_service") == 1 and fake.services == {}


def test_the_budget_is_shared_by_providers_of_one_account():
    with FakeNorthflank() as fake:
        one, two = provider_for(fake), provider_for(fake)
        one.api().budget.note_poll("a")
        two.api().budget.note_poll("b")

        pollers = one.api().budget.pollers()
        run(closing(one, one.aclose()))
        run(closing(two, two.aclose()))

    assert pollers == 2
