"""Every fault the fake RunPod can inject, and never a duplicate pod.

``deploy_once`` follows the engine's rule for creates: a create whose outcome
is unknown is resolved with ``find(handle)`` before any new create, and a
refused create (429, 402, capacity, auth) left nothing behind to find.
"""

from __future__ import annotations

import asyncio

import pytest

from sindri_jupyter.core.types import Handle
from sindri_jupyter.errors import (
    AuthError,
    CapacityError,
    OutcomeUnknownError,
    ProviderAPIError,
    RateLimitError,
)
from sindri_jupyter.testing.fake_runpod import FakeRunPod
from tests.test_runpod_client import config, provider_for, run


@pytest.fixture
def fake():
    with FakeRunPod(ssh_port=2222) as server:
        yield server


def marker_handle(marker: str = "fault-1") -> Handle:
    return Handle(provider="runpod", name="ml-training", marker=marker)


async def deploy_once(provider, handle, *, settle: float = 0.0):
    """Create; when the outcome is unknown, look up by marker before creating again."""
    try:
        return await provider.create(config(), handle), "created"
    except OutcomeUnknownError:
        await asyncio.sleep(settle)  # a slow server may still be creating
        found = await provider.find(handle)
        if found is not None:
            return found, "found"
        return await provider.create(config(), handle), "created again"


def deploy(fake, *, settle=0.0, **kw):
    async def go():
        provider = provider_for(fake, **kw)
        try:
            return await deploy_once(provider, marker_handle(), settle=settle)
        finally:
            await provider.aclose()

    return run(go())


def test_429_with_retry_after_on_a_read_is_retried(fake):
    fake.inject("gpus", status=429, retry_after=1)

    made, how = deploy(fake)

    assert how == "created" and made.resource_id
    assert fake.count("GET", "/v2/catalog/gpus") == 2
    assert len(fake.live_pods()) == 1


def test_429_with_an_http_date_is_retried_too(fake):
    fake.inject("gpus", status=429, retry_after=1, retry_after_date=True)

    made, _ = deploy(fake)

    assert made.resource_id and fake.count("GET", "/v2/catalog/gpus") == 2


def test_429_on_create_is_not_retried_and_creates_nothing(fake):
    fake.inject("create", status=429, retry_after=1)

    with pytest.raises(RateLimitError) as caught:
        deploy(fake)

    assert "1 s" in caught.value.hint
    assert fake.count("POST", "/v2/pods") == 1 and fake.live_pods() == []


def test_5xx_on_reads_is_retried(fake):
    fake.inject("gpus", status=503, times=2)

    made, _ = deploy(fake)

    assert made.resource_id and fake.count("GET", "/v2/catalog/gpus") == 3


@pytest.mark.parametrize("fault", [{"status": 500}, {"drop": True}])
def test_create_failing_after_creating_is_found_by_marker(fake, fault):
    fake.inject("create", after=True, **fault)

    made, how = deploy(fake)

    assert how == "found"
    assert fake.live_pods() == [made.resource_id]
    assert fake.count("POST", "/v2/pods") == 1


@pytest.mark.parametrize("fault", [{"status": 502}, {"drop": True}])
def test_create_failing_before_creating_is_created_once_after_lookup(fake, fault):
    fake.inject("create", **fault)

    made, how = deploy(fake)

    assert how == "created again"
    assert fake.live_pods() == [made.resource_id]


def test_slow_create_answer_is_resolved_by_marker_not_by_a_second_pod(fake):
    fake.inject("create", delay=0.6)

    made, how = deploy(fake, read=0.2, settle=1.0)

    assert how == "found"
    assert fake.live_pods() == [made.resource_id]


def test_slow_read_past_the_timeout_is_an_api_error_without_status(fake):
    fake.inject("get_pod", delay=0.6)

    async def go():
        provider = provider_for(fake, read=0.2)
        try:
            return await provider.get(Handle(provider="runpod", name="x",
                                             marker="m", resource_id="abc"))
        finally:
            await provider.aclose()

    with pytest.raises(ProviderAPIError) as caught:
        run(go())

    assert caught.value.status is None and "no answer" in caught.value.message


def test_capacity_400_on_create_creates_nothing_and_offers_alternatives(fake):
    fake.inject("create", status=400)

    with pytest.raises(CapacityError) as caught:
        deploy(fake)

    assert caught.value.alternatives
    assert fake.live_pods() == []


@pytest.mark.parametrize("status", [401, 403])
def test_auth_refusal_on_create_creates_nothing(fake, status):
    fake.inject("create", status=status)

    with pytest.raises(AuthError) as caught:
        deploy(fake)

    assert caught.value.status == status and fake.live_pods() == []


def test_402_insufficient_balance_says_to_add_credit(fake):
    fake.inject("create", status=402)

    with pytest.raises(ProviderAPIError) as caught:
        deploy(fake)

    assert caught.value.status == 402 and "credit" in caught.value.hint
    assert fake.live_pods() == []


def test_422_for_a_refused_body_is_never_retried(fake):
    fake.inject("create", status=422, detail="Request validation failed.")

    with pytest.raises(ProviderAPIError) as caught:
        deploy(fake)

    assert caught.value.status == 422
    assert fake.count("POST", "/v2/pods") == 1 and fake.live_pods() == []


def test_409_for_an_action_not_allowed_is_explained(fake):
    async def go():
        provider = provider_for(fake)
        try:
            made = await provider.create(config(), marker_handle())
            await provider.client().pod_action(made.resource_id, "start")
        finally:
            await provider.aclose()

    with pytest.raises(ProviderAPIError) as caught:
        run(go())

    assert caught.value.status == 409 and "actions" in caught.value.hint


def test_start_refused_for_capacity_offers_a_fresh_pod(fake):
    fake.inject("action", status=400, detail="not enough free GPUs on the host machine")

    async def go():
        provider = provider_for(fake)
        try:
            made = await provider.create(config(), marker_handle())
            fake.pods[made.resource_id].desired = "EXITED"
            await provider.start(made)
        finally:
            await provider.aclose()

    with pytest.raises(CapacityError) as caught:
        run(go())

    assert "fresh pod" in caught.value.hint

