"""``%sindri status`` as a panel: every environment, its cost, and buttons.

Rows show state, provider, GPU, $/h, uptime and accrued cost; a running
environment also shows GPU utilisation and memory, asked of its kernel
(``probe``). Stop, start, destroy (after a confirmation) and attach run on the
loop thread through ``sync.submit``: a click returns at once, so the buttons
work while the kernel is idle and never block its message loop. The panel
refreshes itself with back-off (5 s growing to 60 s while nothing changes) for
at most ``REFRESH_FOR`` seconds. Without widgets the CLI's table is printed.
"""

from __future__ import annotations

import asyncio
import html
import logging
import threading
import time
from typing import Any

from sindri_jupyter.frontends import display

log = logging.getLogger(__name__)

REFRESH_FIRST, REFRESH_CAP = 5.0, 60.0
REFRESH_FOR = 3600.0
COLUMNS = ("name", "state", "provider", "gpu", "$/h", "uptime", "cost", "gpu use")

_panels: list[StatusPanel] = []


def stop_all() -> None:
    """Stop the refresh of every panel (on ``%unload_ext``)."""
    for panel in _panels:
        panel.close()


def show_status(name: str | None = None, *, include_unrecorded: bool = False,
                widgets: bool | None = None) -> StatusPanel | None:
    use_widgets = display.widgets_usable() if widgets is None else widgets
    if not use_widgets:
        import sys

        from sindri_jupyter.cli import dispatch, parser
        from sindri_jupyter.cli.render import Out

        argv = ["status"] + ([name] if name else []) + (["--all"] if include_unrecorded
                                                        else [])
        dispatch(parser.parse(argv), Out(sys.stdout, sys.stderr, interactive=False))
        return None
    panel = StatusPanel(name)
    panel.load()
    panel.show()
    panel.start_refresh()
    return None


async def collect(name: str | None = None, *, probe_gpus: bool = True) -> list[dict]:
    """Status rows of one or every environment, with a GPU look at running ones."""
    from sindri_jupyter.cli.commands import status_row
    from sindri_jupyter.core.engine import Engine
    from sindri_jupyter.frontends.probe import probe

    engine = Engine()
    try:
        statuses = [await engine.status(name)] if name else await engine.status_all()
    finally:
        await engine.aclose()
    rows = []
    for status in statuses:
        row = status_row(status)
        row["gpu"] = _gpu_of(status.record)
        row["gpu_use"] = "-"
        row["_record"] = status.record
        rows.append(row)
    ready = [r for r in rows if r["state"] == "RUNNING" and r["phase"] == "ready"]
    if probe_gpus and ready:
        looks = await asyncio.gather(*(probe(r["_record"]) for r in ready))
        for row, look in zip(ready, looks):
            row["gpu_use"] = look.gpu_text()
    return rows


def _gpu_of(record) -> str:
    data = record.handle_data
    gpu = data.get("gpu") or data.get("gpu_type") or data.get("gpu_type_id")
    count = data.get("gpu_count")
    if not gpu:
        return "-"
    return f"{count}x {gpu}" if count and count != 1 else str(gpu)


def row_cells(row: dict) -> list[str]:
    return [row["name"], row["state"], row["provider"], row["gpu"],
            row["price_per_hour_text"], row["uptime"], row["cost"], row["gpu_use"]]


def table_text(rows: list[dict]) -> str:
    from sindri_jupyter.cli.render import plain_table

    if not rows:
        return "no environments recorded; `%sindri deploy` creates one"
    return plain_table(COLUMNS, [row_cells(r) for r in rows])


class StatusPanel:
    """The widget panel; ``rows`` is the last look, ``message`` the last action."""

    def __init__(self, name: str | None = None):
        import ipywidgets as w

        self.name = name
        self.rows: list[dict] = []
        self.closed = False
        self.last_action = None
        self._lock = threading.Lock()
        self._row_boxes: dict[str, Any] = {}
        self.header = w.HTML()
        self.message = w.HTML()
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh_soon())
        self.body = w.VBox()
        self.widget = w.VBox([w.HBox([self.header, self.refresh_button]), self.body,
                              self.message])
        self.surface = display.Surface()
        self._wake: asyncio.Event | None = None
        self._task = None
        _panels.append(self)

    # -- data --------------------------------------------------------------------

    def load(self) -> None:
        """First look, in the cell (errors raise there)."""
        from sindri_jupyter.core import sync

        self.apply(sync.run(collect(self.name)))

    def apply(self, rows: list[dict]) -> bool:
        """Show new rows; True when something a person cares about changed."""
        with self._lock:
            before = [_signature(r) for r in self.rows]
            self.rows = rows
            self._render()
        stamp = time.strftime("%H:%M:%S")
        self.header.value = (f"<b>sindri environments</b> ({len(rows)}) "
                             f"<span style='color:#757575'>as of {stamp}</span>")
        return before != [_signature(r) for r in rows]

    def show(self) -> None:
        text = table_text(self.rows)
        self.surface.show(display.bundle(text, display.pre(text), self.widget))

    # -- rendering -----------------------------------------------------------------

    def _render(self) -> None:
        names = [r["name"] for r in self.rows]
        if names != list(self._row_boxes):
            self._row_boxes = {r["name"]: _RowView(self, r["name"]) for r in self.rows}
            if not self.rows:
                import ipywidgets as w

                self.body.children = [w.HTML(
                    "no environments recorded; <code>%sindri deploy</code> creates one")]
            else:
                self.body.children = [v.box for v in self._row_boxes.values()]
        for row in self.rows:
            self._row_boxes[row["name"]].update(row)

    def say(self, text: str, *, error: bool = False) -> None:
        colour = "#c62828" if error else "#424242"
        self.message.value = f"<div style='color:{colour}'>{html.escape(text)}</div>"

    # -- actions (clicks run on the kernel thread; the work runs on the loop) -------

    def act(self, name: str, action: str) -> Any:
        """Start ``action`` on ``name`` in the background; return its future."""
        self.say(f"{action} {name}: started")
        future = display.submit(_operate(name, action))
        future.add_done_callback(lambda f: self._done(name, action, f))
        self.last_action = future
        return future

    def _done(self, name: str, action: str, future) -> None:
        if future.cancelled():
            self.say(f"{action} {name}: cancelled", error=True)
        elif future.exception() is not None:
            exc = future.exception()
            self.say(f"{action} {name} failed: {exc}", error=True)
        else:
            self.say(f"{action} {name}: {future.result()}")
        self.refresh_soon()

    # -- refresh -----------------------------------------------------------------------

    def start_refresh(self) -> None:
        self._task = display.submit(self._refresher())

    def refresh_soon(self) -> None:
        """Refresh now and restart the back-off (thread-safe)."""
        from sindri_jupyter.core import sync

        if self._wake is not None:
            sync.loop().call_soon_threadsafe(self._wake.set)
        else:
            display.submit(self.refresh_once())

    async def refresh_once(self) -> bool:
        try:
            return self.apply(await collect(self.name))
        except Exception as exc:  # noqa: BLE001 - shown in the panel, refresh goes on
            self.say(f"refresh failed ({type(exc).__name__}): {exc}", error=True)
            return False

    async def _refresher(self) -> None:
        from sindri_jupyter.core.waiting import Backoff

        self._wake = asyncio.Event()
        backoff = Backoff(first=REFRESH_FIRST, cap=REFRESH_CAP)
        stop_at = time.monotonic() + REFRESH_FOR
        while not self.closed and time.monotonic() < stop_at:
            try:
                await asyncio.wait_for(self._wake.wait(), backoff.next())
                self._wake.clear()
                backoff.reset()
            except asyncio.TimeoutError:
                pass
            if not self.closed and await self.refresh_once():
                backoff.reset()
        if not self.closed:
            self.header.value += " · auto-refresh stopped; press Refresh"

    def close(self) -> None:
        self.closed = True
        if self._wake is not None:
            from sindri_jupyter.core import sync

            sync.loop().call_soon_threadsafe(self._wake.set)
        if self in _panels:
            _panels.remove(self)


def _signature(row: dict) -> tuple:
    return (row["name"], row["state"], row["phase"], row["gpu_use"])


async def _operate(name: str, action: str) -> str:
    from sindri_jupyter.core.engine import Engine

    if action == "attach":
        return await asyncio.to_thread(_attach, name)
    engine = Engine()
    try:
        if action == "stop":
            await engine.stop(name)
            return "stopped"
        if action == "start":
            record = await engine.start(name)
            return record.phase
        await engine.destroy(name)
        return "destroyed and confirmed gone"
    finally:
        await engine.aclose()


def _attach(name: str) -> str:
    from sindri_jupyter.remote import kernelspec

    path = kernelspec.install(name)
    return f"kernelspec {path.name} installed; choose it in the kernel menu"


class _RowView:
    """One environment: facts, buttons, and the destroy confirmation."""

    def __init__(self, panel: StatusPanel, name: str):
        import ipywidgets as w

        self.panel, self.name = panel, name
        self.info = w.HTML()
        self.gpu = w.HTML()
        self.buttons = {}
        for action, style in (("stop", ""), ("start", ""), ("destroy", "danger"),
                              ("attach", "")):
            button = w.Button(description=action, button_style=style,
                              layout=w.Layout(width="80px"))
            button.on_click(lambda _, a=action: self.click(a))
            self.buttons[action] = button
        self.confirm_yes = w.Button(description=f"yes, destroy {name}",
                                    button_style="danger", layout=w.Layout(width="auto"))
        self.confirm_no = w.Button(description="cancel")
        self.confirm_yes.on_click(lambda _: self.confirmed(True))
        self.confirm_no.on_click(lambda _: self.confirmed(False))
        self.confirm = w.HBox([w.HTML(f"Destroy <b>{html.escape(name)}</b>? Its disk "
                                      "is deleted too."), self.confirm_yes,
                               self.confirm_no],
                              layout=w.Layout(display="none"))
        self.box = w.VBox([w.HBox([self.info, *self.buttons.values()]), self.gpu,
                           self.confirm])

    def update(self, row: dict) -> None:
        cells = row_cells(row)
        labels = ("", "state", "on", "GPU", "", "up", "cost", "")
        parts = [f"<b>{html.escape(cells[0])}</b>"] + [
            f"{label} {html.escape(c)}".strip() for label, c in zip(labels[1:7], cells[1:7])]
        self.info.value = (f"<div style='min-width:34em'>{' · '.join(parts)}"
                           f"<br><small>{html.escape(row['note'] or '')}</small></div>")
        self.gpu.value = f"<small>GPU use: {html.escape(row['gpu_use'])}</small>"
        running = row["state"] == "RUNNING"
        self.buttons["stop"].disabled = not running
        self.buttons["start"].disabled = row["state"] not in ("STOPPED",)
        self.buttons["attach"].disabled = not (running and row["phase"] == "ready")

    def click(self, action: str):
        if action == "destroy":
            self.confirm.layout.display = "flex"
            return None
        return self.panel.act(self.name, action)

    def confirmed(self, yes: bool):
        self.confirm.layout.display = "none"
        if not yes:
            self.panel.say(f"destroy {self.name}: not confirmed, nothing done")
            return None
        return self.panel.act(self.name, "destroy")
