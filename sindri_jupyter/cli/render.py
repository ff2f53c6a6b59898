"""Terminal output: rich tables in a terminal, plain aligned text when piped."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from sindri_jupyter.core.waiting import Event


class Out:
    """Where a command's user-facing output goes; the magic has its own."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None,
                 interactive: bool | None = None):
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.interactive = self.out.isatty() if interactive is None else interactive

    def print(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def error(self, text: str) -> None:
        self.err.write(text + "\n")
        self.err.flush()

    def json(self, obj: Any) -> None:
        self.print(json.dumps(obj, indent=2, default=str))

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[Any]],
              title: str | None = None) -> None:
        if self.interactive:
            from rich.console import Console
            from rich.table import Table

            table = Table(*columns, title=title)
            for row in rows:
                table.add_row(*(str(c) for c in row))
            Console(file=self.out).print(table)
            return
        self.print(plain_table(columns, rows))

    def event(self, event: Event) -> None:
        self.print(f"[{event.elapsed:6.1f}s] {event.phase:<12} {event.message}")

    def confirm(self, question: str) -> bool:
        if not sys.stdin.isatty():
            return False
        self.out.write(f"{question} [y/N] ")
        self.out.flush()
        return sys.stdin.readline().strip().lower() in ("y", "yes")


def plain_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(map(str, columns))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


def money(value: float | None) -> str:
    return "-" if value is None else f"${value:.2f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
