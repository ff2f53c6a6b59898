"""Where notebook output goes: a live widget, an updatable display, or printed lines.

Work started by a magic finishes on the shared loop thread (``core.sync``), after
the cell that started it may have ended. Anything that thread shows must reach
the *starting* cell, also while other cells run. Two mechanisms do that without
depending on which cell is current:

- widget model updates (comm messages; every view of the model re-renders), and
- ``update_display_data`` on a display id captured when the cell ran (frontends
  and nbclient update every output carrying that id, in whichever cell it is).

Printing from the loop thread would land in whatever cell is running, so in a
kernel nothing here prints from a thread. Background work is submitted with
``submit`` below, in an empty ``contextvars`` context: otherwise the asyncio
task inherits the starting cell's parent header, and a client that routes by
parent (nbclient, nbval) drops every update sent after that cell ended. With
no parent of its own, an update carries the running cell's header, which
every client accepts, and the display id still targets the starting cell.
Outside a kernel (terminal IPython, a script) there are no cells, and printed
lines are the right fallback.

``SINDRI_WIDGETS=0`` forces the text forms, e.g. for a frontend without the
widget manager (such frontends also show the text/plain part of every bundle).
"""

from __future__ import annotations

import contextvars
import html
import importlib.util
import os
import sys
import threading
from typing import Any


def in_kernel() -> bool:
    """True inside a Jupyter kernel (cells, display ids, comms exist)."""
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def widgets_usable() -> bool:
    """A kernel with ipywidgets importable, unless SINDRI_WIDGETS=0 says otherwise."""
    if os.environ.get("SINDRI_WIDGETS", "").strip() in ("0", "false", "no"):
        return False
    return in_kernel() and importlib.util.find_spec("ipywidgets") is not None


def submit(coro):
    """``sync.submit`` in an empty context: updates follow the display id, not a cell."""
    from sindri_jupyter.core import sync

    return contextvars.Context().run(sync.submit, coro)


def bundle(text: str, html_text: str | None = None,
           widget: Any = None) -> dict[str, Any]:
    """A mimebundle: the widget view (if any) plus static fallbacks."""
    data: dict[str, Any] = {"text/plain": text}
    if html_text is not None:
        data["text/html"] = html_text
    if widget is not None:
        data["application/vnd.jupyter.widget-view+json"] = {
            "version_major": 2, "version_minor": 0, "model_id": widget.model_id}
    return data


def pre(text: str) -> str:
    """Plain text as a small HTML block."""
    return f"<pre style='margin:0'>{html.escape(text)}</pre>"


class Surface:
    """One output area of the starting cell, updatable from any thread.

    In a kernel it is a display id: ``show`` displays the bundle in the current
    cell, ``update`` replaces it there later. Outside a kernel ``update`` prints
    the ``line`` it is given (or the text), since there is no cell to update.
    """

    def __init__(self) -> None:
        self._handle = None
        self._kernel = in_kernel()
        self._lock = threading.Lock()

    def show(self, data: dict[str, Any]) -> None:
        if self._kernel:
            from IPython.display import display

            self._handle = display(data, raw=True, display_id=True)
        else:
            _print(data["text/plain"])

    def update(self, data: dict[str, Any], line: str | None = None) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.update(data, raw=True)
            elif not self._kernel:
                _print(line if line is not None else data["text/plain"])


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
