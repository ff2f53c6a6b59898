"""Budget, lifetime and idle limits: the host watchdog and the status guard."""

from __future__ import annotations

import asyncio
import os
import time

from sindri_jupyter.config import loads
from sindri_jupyter.core.engine import Engine
from sindri_jupyter.core.state import Store
from sindri_jupyter.core.waiting import Timeouts
from tests.conftest import alive
from tests.test_engine import LOCAL, Scripted


def wait_dead(pid: int, budget: float) -> bool:
    deadline = time.monotonic() + budget
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not alive(pid)


def deploy_local(text: str):
    engine = Engine()
    record = asyncio.run(engine.deploy(loads(text, "t.yaml", {})))
    return engine, record.handle_data["kernel"]["pid"]


def test_watchdog_stops_an_idle_kernel_with_no_client_connected(monkeypatch):
    monkeypatch.setenv("SINDRI_WATCHDOG_INTERVAL", "0.2")
    engine, pid = deploy_local("name: idle\ndeployment:\n  idle_stop_minutes: 0.02\n")

    assert wait_dead(pid, 30), "an idle kernel must be stopped by its watchdog"
    folder = Store.default().get("idle").handle_data["host_workdir"]
    assert "idle for" in open(os.path.join(folder, "watchdog.state")).read()
    asyncio.run(engine.destroy("idle"))


def test_watchdog_keeps_a_busy_kernel(monkeypatch):
    monkeypatch.setenv("SINDRI_WATCHDOG_INTERVAL", "0.2")
    engine, pid = deploy_local("name: busy\ndeployment:\n  idle_stop_minutes: 0.02\n")

    async def spin():
        from sindri_jupyter.remote import sessions

        session = await sessions.session("busy")
        result = await session.execute(
            "import time\nend = time.time() + 3\nwhile time.time() < end: pass\n",
            lambda k, c: None)
        await sessions.close_all()
        return result

    result = asyncio.run(spin())

    assert result.ok and alive(pid), "busy for longer than the idle limit, still alive"
    asyncio.run(engine.destroy("busy"))


def test_watchdog_stops_the_kernel_at_the_end_of_its_lifetime(monkeypatch):
    monkeypatch.setenv("SINDRI_WATCHDOG_INTERVAL", "0.2")
    engine, pid = deploy_local(
        "name: short\ndeployment:\n  max_lifetime_hours: 0.0005\n")

    assert wait_dead(pid, 30)
    asyncio.run(engine.destroy("short"))


def test_status_stops_an_environment_past_its_budget():
    provider = Scripted([("RUNNING", LOCAL)])
    provider.price = 3600.0  # one dollar a second
    original_plan = provider.plan

    async def pricey(config):
        import dataclasses

        return dataclasses.replace(await original_plan(config), price_per_hour=3600.0)

    provider.plan = pricey
    engine = Engine(Store.default(), timeouts=Timeouts(20, 20, 60, 20),
                    providers={"local": provider})
    config = loads("name: box\ndeployment:\n  budget_usd: 0.5\n", "t.yaml", {})
    plan = asyncio.run(engine.plan(config))
    asyncio.run(engine.deploy(config))
    time.sleep(1.0)

    status = asyncio.run(engine.status("box"))

    assert any(n.key == "deployment.budget_usd" and n.treatment == "honoured"
               for n in plan.notes)
    assert status.error.startswith("stopped: its cost")
    assert Store.default().get("box").phase == "stopped"
    later = asyncio.run(engine.status("box"))
    assert later.error.startswith("stopped: its cost"), "the reason stays visible"
    events = [e["message"] for e in Store.default().events("box")]
    assert any(m.startswith("stopping: its cost") for m in events)


def test_status_says_why_it_stopped_and_when_a_local_kernel_ended(monkeypatch):
    monkeypatch.setenv("SINDRI_WATCHDOG_INTERVAL", "0.2")
    engine, pid = deploy_local("name: gone\ndeployment:\n  idle_stop_minutes: 0.02\n")

    assert wait_dead(pid, 30)
    ended = asyncio.run(engine.status("gone"))

    assert ended.error == "its kernel has ended; the next run starts a fresh one"
    asyncio.run(engine.destroy("gone"))
