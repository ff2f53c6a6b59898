"""Widgets (or text) for workshop mode: a row per participant.

During a deploy each seat has its own ``DeployState``; the table updates from
the loop thread through widget models and a display id, like the deploy panel.
``status_table`` and ``handout_table`` render what ``Workshop`` returns.
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any

from sindri_jupyter.frontends import display
from sindri_jupyter.frontends.progress import DeployState
from sindri_jupyter.frontends.workshop import Seat, Workshop

# Re-render the table at most this often (30 seats send hundreds of events).
MIN_REDRAW_SECONDS = 0.25


def _html_table(columns: list[str], rows: list[list[str]],
                colours: list[str] | None = None) -> str:
    head = "".join(f"<th style='text-align:left;padding-right:1em'>{html.escape(c)}</th>"
                   for c in columns)
    body = []
    for i, row in enumerate(rows):
        style = f" style='color:{colours[i]}'" if colours and colours[i] else ""
        cells = "".join(f"<td style='padding-right:1em'>{html.escape(str(c))}</td>"
                        for c in row)
        body.append(f"<tr{style}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _text_table(columns: list[str], rows: list[list[str]]) -> str:
    from sindri_jupyter.cli.render import plain_table

    return plain_table(columns, rows)


class WorkshopProgress:
    """The deploy of every seat, one line each."""

    COLUMNS = ("participant", "environment", "phase", "elapsed", "$/h", "message")

    def __init__(self, workshop: Workshop, *, widgets: bool | None = None):
        self.workshop = workshop
        self.states = {s.env: DeployState(s.env, provider="") for s in workshop.seats}
        self.use_widgets = display.widgets_usable() if widgets is None else widgets
        self.surface = display.Surface()
        self._lock = threading.Lock()
        self._drawn = 0.0
        self.widget = None
        if self.use_widgets:
            import ipywidgets as w

            self.summary = w.HTML()
            self.table = w.HTML()
            self.widget = w.VBox([self.summary, self.table])
            self._render()

    def show(self) -> None:
        self.surface.show(self._bundle())

    def on_event(self, seat: Seat, event: Any) -> None:
        self.states[seat.env].apply(event)
        if self.widget is not None and time.monotonic() - self._drawn >= MIN_REDRAW_SECONDS:
            self._render()

    def seat_done(self, seat: Seat) -> None:
        state = self.states[seat.env]
        state.finish(seat.outcome if seat.outcome != "pending" else "failed")
        if seat.error:
            state.error = seat.error
        if self.widget is not None:
            self._render()
        elif not display.in_kernel():
            print(f"{seat.participant} ({seat.env}): {seat.outcome} "
                  f"{seat.error.splitlines()[0] if seat.error else ''}".rstrip())

    def finish(self) -> None:
        for seat in self.workshop.seats:
            if not self.states[seat.env].done:
                self.seat_done(seat)
        if self.widget is not None:
            self._render()
        self.surface.update(self._bundle(), line=self.counts())

    def counts(self) -> str:
        outcomes = [s.outcome for s in self.states.values()]
        ready = outcomes.count("ready") + outcomes.count("created")
        failed = outcomes.count("failed")
        return (f"workshop {self.workshop.name}: {ready} of {len(outcomes)} ready"
                + (f", {failed} failed" if failed else ""))

    def _rows(self) -> tuple[list[list[str]], list[str]]:
        rows, colours = [], []
        for seat in self.workshop.seats:
            s = self.states[seat.env]
            message = s.error.splitlines()[0] if s.error else s.message
            rows.append([seat.participant, seat.env, s.phase if not s.done else s.outcome,
                         f"{s.elapsed():.0f}s", "-" if s.price_per_hour is None
                         else f"${s.price_per_hour:.2f}", message])
            colours.append({"failed": "#c62828", "ready": "#2e7d32"}.get(s.outcome, ""))
        return rows, colours

    def _render(self) -> None:
        with self._lock:
            self._drawn = time.monotonic()
            rows, colours = self._rows()
            self.summary.value = f"<b>{html.escape(self.counts())}</b>"
            self.table.value = _html_table(list(self.COLUMNS), rows, colours)

    def _bundle(self) -> dict[str, Any]:
        rows, _ = self._rows()
        text = self.counts() + "\n" + _text_table(list(self.COLUMNS), rows)
        return display.bundle(text, display.pre(text), self.widget)


STATUS_COLUMNS = ["participant", "environment", "state", "cost", "budget left",
                  "expires", "idle", "note"]


def status_cells(row: dict[str, Any], seat: Seat) -> list[str]:
    left = "-" if seat.budget_usd is None else f"${seat.budget_usd - row['cost']:.2f}"
    idle = "-" if row["idle_seconds"] is None else (
        f"IDLE {row['idle_seconds'] / 60:.0f} min" if row["idle"]
        else f"active ({row['idle_seconds'] / 60:.0f} min ago)")
    flags = [f for f, on in (("over budget", row["over_budget"]),
                             ("expired", row["expired"])) if on]
    note = "; ".join(flags + ([row["note"].splitlines()[0]] if row["note"] else []))
    return [row["participant"], row["environment"], row["state"], f"${row['cost']:.2f}",
            left, row["expires"], idle, note]


def show_table(title: str, columns: list[str], rows: list[list[str]],
               colours: list[str] | None = None) -> None:
    """Display a static table: HTML in a notebook, aligned text elsewhere."""
    text = f"{title}\n{_text_table(columns, rows)}"
    if display.in_kernel():
        from IPython.display import display as show

        show(display.bundle(text, f"<b>{html.escape(title)}</b>"
                            + _html_table(columns, rows, colours)), raw=True)
    else:
        print(text)
