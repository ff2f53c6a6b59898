"""Widget models change as a deployment moves (checked through the models)."""

from __future__ import annotations

import asyncio
import time

import pytest

from sindri_jupyter.config import loads
from sindri_jupyter.core import sync
from sindri_jupyter.core.engine import Engine
from sindri_jupyter.core.state import Store
from sindri_jupyter.core.waiting import Event, Timeouts
from sindri_jupyter.errors import ProviderError
from sindri_jupyter.frontends import deploying
from sindri_jupyter.frontends.gpu_picker import GpuPicker, deploy_command, filter_rows
from sindri_jupyter.frontends.progress import DeployProgress, DeployState
from sindri_jupyter.frontends.status_panel import StatusPanel
from sindri_jupyter.frontends.workshop import Participant, Workshop
from sindri_jupyter.frontends.workshop_view import WorkshopProgress
from tests.test_engine import LOCAL, Scripted

CONFIG = loads("name: box\ndeployment:\n  provider: local\n", "t.yaml", {})
ROWS = [
    {"provider": "runpod", "id": "NVIDIA GeForce RTX 4090", "name": "RTX 4090",
     "vram_gb": 24, "price_per_hour": 0.69, "availability": "High"},
    {"provider": "runpod", "id": "NVIDIA A100 80GB PCIe", "name": "A100 80GB",
     "vram_gb": 80, "price_per_hour": 1.64, "availability": "Low"},
    {"provider": "northflank", "id": "h100-80", "name": "H100", "vram_gb": 80,
     "price_per_hour": 2.74, "availability": "unavailable"},
]


def scripted_engine(provider) -> Engine:
    return Engine(Store.default(), providers={"local": provider},
                  timeouts=Timeouts(provision=20.0, ssh=20.0, kernel=60.0, stop=20.0))


def test_deploy_state_folds_events_into_phases_price_and_eta():
    state = DeployState("box", provider="runpod")

    state.apply(Event("box", "plan", "plan", 0.0, price_per_hour=0.69))
    state.apply(Event("box", "provisioning", "PROVISIONING", 3.0, "PROVISIONING",
                      eta=90.0))
    at_provisioning = (state.step(), state.eta_left(), state.facts())
    state.apply(Event("box", "ready", "ready: kernel pid 7", 60.0, "RUNNING"))
    state.finish("ready")

    assert at_provisioning[0] == 2 and 80 < at_provisioning[1] <= 90
    assert "ETA" in at_provisioning[2] and "$0.69/h" in at_provisioning[2]
    marks = dict(state.marks())
    assert marks["plan and price"] == "done" and marks["image pull"] == "skipped"
    assert marks["ready"] == "done" and "ETA" not in state.facts()


def test_progress_widget_moves_with_a_real_engine_deploy():
    provider = Scripted(["PENDING", "PROVISIONING", "STARTING", ("RUNNING", LOCAL)])
    progress = DeployProgress(DeployState("box", provider="local"), widgets=True)
    values, styles = [], []
    progress.bar.observe(lambda change: values.append(change.new), names="value")
    progress.bar.observe(lambda change: styles.append(change.new), names="bar_style")

    engine = scripted_engine(provider)
    asyncio.run(engine.deploy(CONFIG, on_event=progress.on_event))
    progress.finish("ready")
    asyncio.run(engine.destroy("box"))

    assert values == sorted(values) and values[-1] == 6
    assert {1, 2, 3, 5} <= set(values), "create, provisioning, image, kernel are shown"
    assert styles[-1] == "success"
    assert "$0.69/h" in progress.facts.value
    assert "ready" in progress.title.value


def test_background_failure_is_shown_in_the_widget():
    provider = Scripted(["PROVISIONING", "FAILED"])

    started = deploying.start(CONFIG, None, wait_ready=True, widgets=True,
                              engine_factory=lambda: scripted_engine(provider))
    with pytest.raises(ProviderError):
        started.future.result(timeout=30)

    progress = started.progress
    assert progress.bar.bar_style == "danger"
    assert "FAILED" in progress.title.value
    assert "Deploy failed in provisioning" in progress.detail.value
    assert "hint:" in progress.detail.value and "sindri destroy box" in progress.detail.value
    assert "error in provisioning" in progress.state.text()
    sync.run(scripted_engine(provider).destroy("box"))


def deploy_local(name: str) -> None:
    config = loads(f"name: {name}\ndeployment:\n  provider: local\n", "t.yaml", {})

    async def go():
        engine = Engine()
        try:
            await engine.deploy(config)
        finally:
            await engine.aclose()

    sync.run(go())


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_status_panel_buttons_stop_start_and_destroy_with_confirmation():
    deploy_local("panel")
    panel = StatusPanel()
    panel.load()
    row = panel._row_boxes["panel"]
    first = (row.buttons["stop"].disabled, row.buttons["start"].disabled,
             row.gpu.value)

    row.buttons["stop"].click()
    panel.last_action.result(timeout=60)
    sync.run(panel.refresh_once())
    after_stop = (row.buttons["stop"].disabled, row.buttons["start"].disabled)
    row.buttons["start"].click()
    panel.last_action.result(timeout=60)
    sync.run(panel.refresh_once())
    row.buttons["destroy"].click()
    asked = row.confirm.layout.display
    row.confirm_no.click()
    kept = Store.default().find("panel") is not None
    row.buttons["destroy"].click()
    row.confirm_yes.click()
    panel.last_action.result(timeout=60)
    wait_for(lambda: not panel.rows)
    panel.close()

    assert first == (False, True, "<small>GPU use: no GPU</small>")
    assert after_stop == (True, False)
    assert asked == "flex" and kept
    assert "destroy panel: destroyed and confirmed gone" in panel.message.value
    assert Store.default().find("panel") is None
    assert "no environments recorded" in panel.body.children[0].value


def test_gpu_picker_filters_and_fills_in_a_deploy_command():
    picker = GpuPicker(ROWS)

    picker.search.value = "a100"
    one = (len(picker.listing.options), picker.command.value)
    picker.search.value = ""
    picker.available_only.value = True
    picker.min_vram.value = 30
    picker.name.value = "big"

    assert one[0] == 1 and "--gpu 'NVIDIA A100 80GB PCIe'" in one[1]
    assert [r["name"] for r in picker.shown] == ["A100 80GB"]
    assert picker.command.value == ("%sindri deploy --provider runpod --name big "
                                    "--gpu 'NVIDIA A100 80GB PCIe'")
    assert picker.count.value == "1 of 3 GPUs"


def test_gpu_rows_are_sorted_by_price_and_local_rows_need_no_gpu_flag():
    rows = filter_rows(ROWS + [{"provider": "x", "id": "?", "vram_gb": 8}])

    assert [r["id"] for r in rows][-1] == "?"
    assert deploy_command({"provider": "local", "id": "0"}, "here") == \
        "%sindri deploy --provider local --name here"


def test_workshop_table_follows_each_seat():
    workshop = Workshop.plan([Participant("Ada"), Participant("Alan")], "base.yaml")
    view = WorkshopProgress(workshop, widgets=True)
    ada, alan = workshop.seats

    view.on_event(ada, Event(ada.env, "provisioning", "PROVISIONING", 1.0))
    time.sleep(0.3)
    view.on_event(alan, Event(alan.env, "plan", "planned", 0.1, price_per_hour=0.5))
    ada.outcome = "ready"
    view.seat_done(ada)
    alan.outcome, alan.error = "failed", "runpod: no capacity"
    view.seat_done(alan)

    assert "1 of 2 ready, 1 failed" in view.summary.value
    assert "runpod: no capacity" in view.table.value
    assert "$0.50" in view.table.value
