"""The live progress of a deploy: phases, elapsed time, ETA, $/h, failure.

``DeployState`` folds the engine's ``Event`` stream into what a person wants to
see; it has no widget dependency and is what the tests drive. ``DeployProgress``
shows it: an ipywidgets panel in a kernel that has them (with a text/plain
fallback kept current through a display id), printed lines elsewhere. Events
arrive on the loop thread; every update goes to the cell that started the deploy.
"""

from __future__ import annotations

import html
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sindri_jupyter.core.waiting import Event
from sindri_jupyter.frontends import display

# Engine phase names, in the order a deploy passes them, with their labels.
PHASES: tuple[tuple[str, str], ...] = (
    ("plan", "plan and price"), ("create", "create"), ("provisioning", "provisioning"),
    ("image", "image pull"), ("ssh", "SSH"), ("kernel", "kernel"), ("ready", "ready"),
)
_ORDER = {name: i for i, (name, _) in enumerate(PHASES)}
# Phases of start/stop/destroy map onto the deploy line where they fit.
_ALIASES = {"start": "create", "connect": "ssh"}


@dataclass
class DeployState:
    """What is known about one deploy so far. Thread-safe through ``lock``."""

    name: str
    provider: str = ""
    phase: str = "plan"
    message: str = "planning"
    state: str | None = None
    price_per_hour: float | None = None
    eta_at: float | None = None
    outcome: str = "running"  # running | ready | created | failed
    error: str | None = None
    hint: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    reached: set[str] = field(default_factory=set)
    log: deque = field(default_factory=lambda: deque(maxlen=6))
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def apply(self, event: Event) -> None:
        with self.lock:
            phase = _ALIASES.get(event.phase, event.phase)
            if phase in _ORDER and _ORDER[phase] >= _ORDER.get(self.phase, 0):
                self.phase = phase
            self.reached.add(phase)
            self.message = event.message
            self.state = event.state or self.state
            if event.price_per_hour is not None:
                self.price_per_hour = event.price_per_hour
            if event.eta is not None:
                self.eta_at = time.monotonic() + max(0.0, event.eta)
            self.log.append(f"[{event.elapsed:5.1f}s] {event.phase}: {event.message}")
            if phase == "ready":
                self.outcome = "ready"

    def finish(self, outcome: str, error: BaseException | None = None) -> None:
        with self.lock:
            self.finished = time.monotonic()
            self.outcome = outcome
            self.eta_at = None
            if error is not None:
                self.error = getattr(error, "message", None) or str(error) or \
                    type(error).__name__
                self.hint = getattr(error, "hint", None)
                self.log.append(f"failed in {self.phase}: {type(error).__name__}")

    @property
    def done(self) -> bool:
        return self.finished is not None

    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def eta_left(self) -> float | None:
        if self.eta_at is None or self.done:
            return None
        return max(0.0, self.eta_at - time.monotonic())

    def step(self) -> int:
        """Index of the current phase: the progress bar's value."""
        return _ORDER.get(self.phase, 0)

    def marks(self) -> list[tuple[str, str]]:
        """(label, mark) per phase: done, current, failed, skipped or to come."""
        current = self.step()
        out = []
        for i, (name, label) in enumerate(PHASES):
            if i < current or (i == current and self.outcome == "ready"):
                mark = "done" if name in self.reached else "skipped"
            elif i == current:
                mark = {"failed": "failed", "created": "done"}.get(self.outcome, "current")
            else:
                mark = "todo"
            out.append((label, mark))
        return out

    def headline(self) -> str:
        verb = {"running": "deploying", "ready": "ready", "created": "created",
                "failed": "FAILED"}[self.outcome]
        where = f" on {self.provider}" if self.provider else ""
        return f"{self.name}{where}: {verb}"

    def facts(self) -> str:
        parts = [f"elapsed {_clock(self.elapsed())}"]
        eta = self.eta_left()
        if eta is not None:
            parts.append(f"ETA {_clock(eta)}")
        parts.append("price unknown" if self.price_per_hour is None
                     else f"${self.price_per_hour:.2f}/h")
        if self.state:
            parts.append(self.state)
        return " · ".join(parts)

    def text(self) -> str:
        """The whole state as plain text (nbconvert, GitHub, terminals)."""
        symbols = {"done": "[x]", "current": "[>]", "failed": "[!]", "skipped": "[-]",
                   "todo": "[ ]"}
        with self.lock:
            lines = [f"{self.headline()} ({self.facts()})",
                     "  " + "  ".join(f"{symbols[m]} {label}" for label, m in self.marks())]
            if self.outcome == "failed":
                lines.append(f"  error in {self.phase}: {self.error}")
                if self.hint:
                    lines.append(f"  hint: {self.hint}")
            else:
                lines.append(f"  {self.message}")
        return "\n".join(lines)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


_COLOURS = {"done": "#2e7d32", "current": "#1565c0", "failed": "#c62828",
            "skipped": "#9e9e9e", "todo": "#9e9e9e"}
_ICONS = {"done": "✓", "current": "●", "failed": "✗", "skipped": "–", "todo": "○"}


def phase_html(state: DeployState) -> str:
    chips = [f"<span style='color:{_COLOURS[m]};margin-right:1em'>{_ICONS[m]} "
             f"{html.escape(label)}</span>" for label, m in state.marks()]
    return "<div>" + "".join(chips) + "</div>"


def detail_html(state: DeployState) -> str:
    if state.outcome == "failed":
        hint = (f"<div>hint: {html.escape(state.hint)}</div>" if state.hint else "")
        return (f"<div style='color:#c62828'><b>Deploy failed in {state.phase}:</b> "
                f"{html.escape(state.error or '')}{hint}</div>")
    return f"<div>{html.escape(state.message)}</div>"


class DeployProgress:
    """Shows one ``DeployState`` in the cell that started the deploy."""

    def __init__(self, state: DeployState, *, widgets: bool | None = None):
        self.state = state
        self.use_widgets = display.widgets_usable() if widgets is None else widgets
        self.surface = display.Surface()
        self.widget = self._build() if self.use_widgets else None

    def _build(self):
        import ipywidgets as w

        self.title = w.HTML()
        self.bar = w.IntProgress(min=0, max=len(PHASES) - 1, bar_style="info")
        self.phases = w.HTML()
        self.facts = w.Label()
        self.detail = w.HTML()
        box = w.VBox([self.title, w.HBox([self.bar, self.facts]), self.phases,
                      self.detail])
        self._render_widgets()
        return box

    def show(self) -> None:
        self.surface.show(self._bundle())

    def on_event(self, event: Event) -> None:
        """The engine's listener; runs on the loop thread."""
        self.state.apply(event)
        self._refresh(line=f"[{event.elapsed:6.1f}s] {event.phase:<12} {event.message}")

    def finish(self, outcome: str, error: BaseException | None = None) -> None:
        self.state.finish(outcome, error)
        line = None if outcome == "failed" else self.state.headline()
        self._refresh(line=line)

    def tick(self) -> None:
        """Elapsed time and ETA move on between events (widgets only)."""
        if self.widget is not None:
            self.facts.value = self.state.facts()

    def _refresh(self, line: str | None) -> None:
        if self.widget is not None:
            self._render_widgets()
        self.surface.update(self._bundle(), line=line)

    def _render_widgets(self) -> None:
        s = self.state
        self.title.value = f"<b>{html.escape(s.headline())}</b>"
        self.bar.value = s.step()
        self.bar.bar_style = {"failed": "danger", "ready": "success",
                              "created": "success"}.get(s.outcome, "info")
        self.facts.value = s.facts()
        self.phases.value = phase_html(s)
        self.detail.value = detail_html(s)

    def _bundle(self) -> dict[str, Any]:
        text = self.state.text()
        return display.bundle(text, display.pre(text), self.widget)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return self._bundle()
