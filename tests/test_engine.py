"""The lifecycle engine against a scripted provider that walks state sequences."""

from __future__ import annotations

import asyncio

import pytest

from sindri_jupyter.config import loads
from sindri_jupyter.core.engine import Engine
from sindri_jupyter.core.state import Store
from sindri_jupyter.core.types import (
    Capabilities, Endpoint, Handle, Observed, Plan, State,
)
from sindri_jupyter.core.waiting import Timeouts
from sindri_jupyter.errors import (
    NotFoundError, OutcomeUnknownError, ProviderAPIError, ProviderError, WaitTimeout,
)

LOCAL = Endpoint(kind="local")


class Scripted:
    """A provider whose ``get`` answers come from a list, one per call."""

    name = "scripted"
    capabilities = Capabilities(gpu=True, pause=True)
    first_poll = 0.01
    max_poll = 0.02

    def __init__(self, script, *, create_error=None, exists_after_error=True):
        self.script = list(script)
        self.create_error = create_error
        self.exists_after_error = exists_after_error
        self.created: list[Handle] = []
        self.calls: list[str] = []
        self.gone = False

    async def plan(self, config):
        return Plan("scripted", config.name, "test box", gpu="RTX 4090", gpu_count=1,
                    price_per_hour=0.69)

    async def create(self, config, handle):
        self.calls.append("create")
        made = Handle(handle.provider, handle.name, handle.marker, "pod-1", handle.data)
        self.created.append(made)
        if self.create_error:
            if not self.exists_after_error:
                self.created.clear()
            raise self.create_error
        return made

    async def find(self, handle):
        self.calls.append("find")
        return next((h for h in self.created if h.marker == handle.marker), None)

    async def get(self, handle):
        self.calls.append("get")
        if self.gone:
            return Observed(State.GONE, "deleted")
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        state, endpoint = step if isinstance(step, tuple) else (step, None)
        return Observed(State.parse(state), raw_state=state, endpoint=endpoint)

    async def start(self, handle):
        self.script = [("RUNNING", LOCAL)]

    async def stop(self, handle):
        self.script = [("STOPPED", None)]

    async def destroy(self, handle):
        self.calls.append("destroy")
        self.gone = True

    async def list_owned(self):
        return list(self.created)

    async def check(self):
        return []

    async def aclose(self):
        return None


CONFIG = loads("name: box\ndeployment:\n  provider: local\n", "t.yaml", {})


def make_engine(provider, **timeouts) -> Engine:
    budgets = dict(provision=20.0, ssh=20.0, kernel=60.0, stop=20.0)
    budgets.update(timeouts)
    engine = Engine(Store.default(), timeouts=Timeouts(**budgets),
                    providers={"local": provider})
    return engine


def deploy(engine, **kw):
    return asyncio.run(engine.deploy(CONFIG, **kw))


def test_walks_unknown_states_and_missing_endpoint_until_kernel_answers():
    provider = Scripted(["PENDING", "WEIRD_NEW_STATE", ("RUNNING", None), ("RUNNING", LOCAL)])
    events = []

    record = deploy(make_engine(provider), on_event=events.append)

    phases = [e.phase for e in events]
    assert record.phase == "ready" and record.state == "RUNNING"
    assert any("UNKNOWN (WEIRD_NEW_STATE)" in e.message for e in events)
    assert phases[0] == "plan" and "$0.69/h" in events[0].message
    assert phases[-1] == "ready"
    assert record.handle_data["kernel"]["pid"] > 0


def test_intent_is_recorded_before_create():
    seen = {}
    provider = Scripted([("RUNNING", LOCAL)])
    original = provider.create

    async def spy(config, handle):
        seen["phase"] = Store.default().get("box").phase
        return await original(config, handle)

    provider.create = spy
    deploy(make_engine(provider))

    assert seen["phase"] == "creating"


def test_definite_api_error_leaves_nothing_recorded():
    error = ProviderAPIError("bad", provider="scripted", status=400)
    provider = Scripted(["RUNNING"], create_error=error, exists_after_error=False)

    with pytest.raises(ProviderAPIError):
        deploy(make_engine(provider))

    assert provider.calls == ["create"]
    assert Store.default().find("box") is None


def test_lost_create_answer_is_resolved_by_lookup_not_a_second_create():
    error = ProviderAPIError("server error", provider="scripted", status=502)
    provider = Scripted([("RUNNING", LOCAL)], create_error=error)

    record = deploy(make_engine(provider))

    assert provider.calls.count("create") == 1 and "find" in provider.calls
    assert record.resource_id == "pod-1" and record.phase == "ready"


def test_lost_create_with_nothing_found_raises_and_keeps_the_intent():
    error = OutcomeUnknownError("connection dropped", provider="scripted")
    provider = Scripted(["RUNNING"], create_error=error, exists_after_error=False)
    engine = make_engine(provider)

    with pytest.raises(OutcomeUnknownError):
        deploy(engine)

    assert provider.calls == ["create", "find"], "never a second create"
    assert Store.default().get("box").phase == "creating"
    asyncio.run(engine.destroy("box"))
    assert Store.default().find("box") is None


def test_failed_state_stops_the_wait_with_the_reason():
    provider = Scripted(["PROVISIONING", "FAILED"])

    with pytest.raises(ProviderError) as info:
        deploy(make_engine(provider))

    assert "FAILED" in str(info.value) and "sindri destroy box" in str(info.value)
    assert Store.default().get("box").state == "FAILED"


def test_vanished_resource_becomes_gone():
    provider = Scripted([("RUNNING", LOCAL)])
    engine = make_engine(provider)
    deploy(engine)
    provider.gone = True

    status = asyncio.run(engine.status("box"))

    assert status.observed.state is State.GONE
    assert Store.default().get("box").state == "GONE"


def test_wait_has_a_deadline_and_keeps_the_record():
    provider = Scripted(["PROVISIONING"])

    with pytest.raises(WaitTimeout) as info:
        deploy(make_engine(provider, provision=0.3))

    assert info.value.phase == "provision"
    assert Store.default().get("box").phase == "waiting"


def test_cancel_during_deploy_leaves_a_record_that_destroy_removes():
    provider = Scripted(["PROVISIONING"])
    engine = make_engine(provider)

    async def interrupted():
        task = asyncio.create_task(engine.deploy(CONFIG))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(interrupted())
    assert Store.default().get("box").phase == "waiting"
    asyncio.run(engine.destroy("box"))

    assert "destroy" in provider.calls
    with pytest.raises(NotFoundError):
        Store.default().get("box")


def test_stop_start_destroy_cycle():
    provider = Scripted([("RUNNING", LOCAL)])
    engine = make_engine(provider)
    deploy(engine)

    stopped = asyncio.run(engine.stop("box"))
    started = asyncio.run(engine.start("box"))
    asyncio.run(engine.destroy("box"))

    assert stopped.phase == "stopped" and stopped.state == "STOPPED"
    assert started.phase == "ready"
    assert Store.default().find("box") is None


def test_a_refusal_before_anything_was_sent_leaves_nothing_recorded():
    from sindri_jupyter.errors import ConfigError

    provider = Scripted(["RUNNING"], create_error=ConfigError(["region mismatch"]),
                        exists_after_error=False)

    with pytest.raises(ConfigError):
        deploy(make_engine(provider))

    assert Store.default().find("box") is None


def test_deploy_after_an_unknown_create_adopts_what_it_made():
    error = OutcomeUnknownError("connection dropped", provider="scripted")
    provider = Scripted([("RUNNING", LOCAL)], create_error=error, exists_after_error=False)
    engine = make_engine(provider)
    with pytest.raises(OutcomeUnknownError):
        deploy(engine)
    late = Handle("local", "box", Store.default().get("box").marker, "pod-late")
    provider.created.append(late)  # the slow create landed after all
    provider.create_error = None

    record = deploy(engine)

    assert record.resource_id == "pod-late" and record.phase == "ready"
    assert provider.calls.count("create") == 1, "found, not created again"


def test_ssh_that_never_answers_fails_after_the_ssh_deadline():
    import socket

    from sindri_jupyter.errors import SSHError

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = Endpoint(kind="ssh", host="127.0.0.1", port=port, user="root")
    provider = Scripted([("RUNNING", closed)])

    with pytest.raises(SSHError) as info:
        deploy(make_engine(provider, ssh=2.0))

    assert info.value.step == "connect"
    assert "still runs" in str(info.value) and "sindri destroy box" in str(info.value)
    assert Store.default().get("box").phase == "failed"
