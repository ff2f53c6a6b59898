"""Every fault of the fake RunPod, through the lifecycle engine's deploy.

After each one, whatever the deploy's outcome: no two pods carry one marker,
and every pod the fake holds is known to the state store (so `sindri status`
shows it and `sindri destroy` removes it). ``wait=False`` stops the deploy once
the create is resolved: readiness over SSH is covered in test_runpod_e2e.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from sindri_jupyter.config import loads
from sindri_jupyter.core import sync
from sindri_jupyter.core.engine import Engine
from sindri_jupyter.core.state import Store
from sindri_jupyter.errors import (
    AuthError,
    CapacityError,
    OutcomeUnknownError,
    ProviderAPIError,
    RateLimitError,
)
from sindri_jupyter.providers.runpod.settings import MARKER_ENV
from sindri_jupyter.testing.fake_runpod import FakeRunPod
from tests.test_runpod_client import provider_for
from tests.test_runpod_e2e import EXAMPLE


@pytest.fixture
def fake():
    with FakeRunPod(ssh_port=2222) as server:
        yield server


def deploy(fake, **client):
    """Deploy the example through a fresh engine; the error, if any, is returned."""
    engine = Engine(providers={"runpod": provider_for(fake, **client)})
    config = loads(EXAMPLE, "sindri.yaml", {})
    try:
        sync.run(engine.deploy(config, wait=False))
    except ProviderAPIError as exc:
        return exc
    except OutcomeUnknownError as exc:
        return exc
    finally:
        sync.run(engine.aclose())
    return None


def assert_no_duplicate_and_none_unknown(fake) -> None:
    """One pod per marker; each pod recorded by id, or by the marker destroy finds."""
    markers = Counter(pod.body["env"][MARKER_ENV] for pod in fake.pods.values())
    records = Store.default().all()
    ids, intents = {r.resource_id for r in records}, {r.marker for r in records}
    unknown = [pod.id for pod in fake.pods.values()
               if pod.id not in ids and pod.body["env"][MARKER_ENV] not in intents]
    assert all(n == 1 for n in markers.values()), markers
    assert unknown == [], unknown


def recorded() -> list[str]:
    """Resource ids in the store (an intent kept without one is not listed)."""
    return [r.resource_id for r in Store.default().all() if r.resource_id]


@pytest.mark.parametrize("fault", [
    {"status": 429, "retry_after": 1},
    {"status": 429, "retry_after": 1, "retry_after_date": True},
    {"status": 503, "times": 2},
    {"drop": True},
])
def test_read_faults_are_retried_and_one_pod_is_recorded(fake, fault):
    fake.inject("gpus", **fault)

    error = deploy(fake)

    assert error is None
    assert recorded() == fake.live_pods() and len(recorded()) == 1
    assert_no_duplicate_and_none_unknown(fake)


@pytest.mark.parametrize("fault", [{"status": 500}, {"status": 503}, {"drop": True}])
def test_create_failing_after_creating_is_found_and_recorded(fake, fault):
    fake.inject("create", after=True, **fault)

    error = deploy(fake)

    assert error is None
    assert recorded() == fake.live_pods() and len(recorded()) == 1
    assert fake.count("POST", "/v2/pods") == 1
    assert_no_duplicate_and_none_unknown(fake)


@pytest.mark.parametrize("fault", [{"status": 502}, {"drop": True}])
def test_create_failing_before_creating_is_looked_up_and_not_repeated(fake, fault):
    fake.inject("create", **fault)

    error = deploy(fake)

    assert isinstance(error, OutcomeUnknownError)
    assert fake.count("POST", "/v2/pods") == 1 and fake.live_pods() == []
    assert fake.count("GET", "/v2/pods") >= 1  # the lookup by marker
    assert recorded() == []
    assert_no_duplicate_and_none_unknown(fake)


def test_lookup_after_a_lost_create_survives_a_5xx_of_the_listing(fake):
    fake.inject("create", status=500, after=True)
    fake.inject("list_pods", status=503)

    error = deploy(fake)

    assert error is None and len(recorded()) == 1
    assert_no_duplicate_and_none_unknown(fake)


def test_slow_create_answered_within_the_timeout_makes_one_pod(fake):
    fake.inject("create", delay=0.4)

    error = deploy(fake, read=5.0)

    assert error is None and recorded() == fake.live_pods()
    assert_no_duplicate_and_none_unknown(fake)


def test_slow_create_past_the_timeout_leaves_no_unknown_pod(fake):
    fake.inject("create", delay=0.8)

    error = deploy(fake, read=0.3)
    settled = fake.count("POST", "/v2/pods")  # the fake finishes the create late
    deadline = time.monotonic() + 5
    while not fake.live_pods() and time.monotonic() < deadline:
        time.sleep(0.05)

    assert isinstance(error, OutcomeUnknownError) and settled <= 1
    assert_no_duplicate_and_none_unknown(fake)


@pytest.mark.parametrize("status, kind", [
    (400, CapacityError), (401, AuthError), (403, AuthError),
    (402, ProviderAPIError), (422, ProviderAPIError), (429, RateLimitError),
])
def test_refused_create_leaves_nothing(fake, status, kind):
    fake.inject("create", status=status, retry_after=1 if status == 429 else None)

    error = deploy(fake)

    assert isinstance(error, kind) and error.status == status
    assert fake.count("POST", "/v2/pods") == 1
    assert fake.live_pods() == [] and recorded() == []
    assert_no_duplicate_and_none_unknown(fake)


def test_capacity_with_a_fallback_creates_exactly_one_pod(fake):
    fake.set_stock("NVIDIA RTX A6000", "SECURE", "NONE")
    text = EXAMPLE + "    gpu_fallbacks: [NVIDIA A40]\n"
    engine = Engine(providers={"runpod": provider_for(fake)})

    record = sync.run(engine.deploy(loads(text, "sindri.yaml", {}), wait=False))
    sync.run(engine.aclose())

    assert record.handle_data["gpu"] == "NVIDIA A40"
    assert recorded() == fake.live_pods() and len(fake.live_pods()) == 1
    assert_no_duplicate_and_none_unknown(fake)


def test_409_on_stop_of_a_stopped_pod_is_not_an_error(fake):
    engine = Engine(providers={"runpod": provider_for(fake)})
    sync.run(engine.deploy(loads(EXAMPLE, "sindri.yaml", {}), wait=False))
    pod = fake.pods[fake.live_pods()[0]]
    pod.desired = "EXITED"  # stopped already, e.g. from RunPod's console

    record = sync.run(engine.stop("ml-training"))
    sync.run(engine.aclose())

    assert record.phase == "stopped"
    assert fake.count("POST", f"/v2/pods/{pod.id}/action") == 1
    assert_no_duplicate_and_none_unknown(fake)
