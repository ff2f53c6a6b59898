"""``%sindri gpus`` as a picker: filter the catalog, choose a row, get a deploy line.

Rows come from ``sindri_jupyter.cli.doctor.gpus(provider, min_vram)`` (or any
coroutine function with that signature, for tests and other catalogs): dicts
with ``provider``, ``id``, ``name``, ``vram_gb``, ``price_per_hour`` and
``availability``. Filtering and the deploy line are plain functions; the
widget only wires them up. Without widgets the table and the line for the
cheapest available row are printed.
"""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sindri_jupyter.frontends import display

RowsSource = Callable[[str | None, float | None], Awaitable[list[dict[str, Any]]]]
UNAVAILABLE = {"none", "unavailable", "out of stock", "no", "0"}


def price_of(row: dict[str, Any]) -> float | None:
    for key in ("price_per_hour", "secure_usd_h", "community_usd_h"):
        if row.get(key) is not None:
            return float(row[key])
    return None


def available(row: dict[str, Any]) -> bool:
    return str(row.get("availability") or "unknown").strip().lower() not in UNAVAILABLE


def filter_rows(rows: Sequence[dict[str, Any]], text: str = "", min_vram: float = 0.0,
                provider: str | None = None,
                available_only: bool = False) -> list[dict[str, Any]]:
    """The rows matching every filter, cheapest first (unknown prices last)."""
    words = text.lower().split()
    kept = [r for r in rows
            if (r.get("vram_gb") or 0) >= min_vram
            and (provider in (None, "", "all") or r.get("provider") == provider)
            and (not available_only or available(r))
            and all(w in f"{r.get('id', '')} {r.get('name', '')}".lower() for w in words)]
    return sorted(kept, key=lambda r: (price_of(r) is None, price_of(r) or 0.0))


def deploy_command(row: dict[str, Any], name: str = "NAME") -> str:
    """The ``%sindri deploy`` line that asks for this row's GPU."""
    provider = row.get("provider") or "runpod"
    parts = ["%sindri", "deploy", "--provider", provider, "--name", name or "NAME"]
    if provider != "local":
        parts += ["--gpu", str(row.get("id") or row.get("name"))]
    return " ".join(shlex.quote(p) if i > 0 else p for i, p in enumerate(parts))


def label(row: dict[str, Any]) -> str:
    price = price_of(row)
    price_text = "price ?" if price is None else f"${price:.2f}/h"
    vram = row.get("vram_gb")
    vram_text = "? GB" if vram is None else f"{vram:g} GB"
    return (f"{row.get('provider', '?'):<10} {row.get('name') or row.get('id')!s:<28} "
            f"{vram_text:>7}  {price_text:>9}  {row.get('availability') or 'unknown'}")


def table_text(rows: Sequence[dict[str, Any]]) -> str:
    from sindri_jupyter.cli.render import money, plain_table

    if not rows:
        return "no GPUs found"
    columns = ["provider", "id", "name", "vram_gb", "$/h", "availability"]
    return plain_table(columns, [[r.get("provider", ""), r.get("id", ""), r.get("name", ""),
                                  r.get("vram_gb", ""), money(price_of(r)),
                                  r.get("availability", "")] for r in rows])


def show_picker(provider: str | None = None, min_vram: float | None = None, *,
                rows_source: RowsSource | None = None,
                widgets: bool | None = None) -> GpuPicker | None:
    """Fetch the catalog (in this cell: errors raise here) and show it."""
    from sindri_jupyter.core import sync

    if rows_source is None:
        from sindri_jupyter.cli.doctor import gpus as rows_source
    rows = sync.run(rows_source(provider, min_vram))
    use_widgets = display.widgets_usable() if widgets is None else widgets
    if not use_widgets:
        print(table_text(rows))
        cheapest = filter_rows(rows, available_only=True)
        if cheapest:
            print(f"\ncheapest available: {deploy_command(cheapest[0])}")
        return None
    picker = GpuPicker(rows, min_vram=min_vram or 0.0)
    picker.show()
    return None


class GpuPicker:
    """Filters, a selectable list, and the deploy line of the chosen row."""

    def __init__(self, rows: Sequence[dict[str, Any]], *, min_vram: float = 0.0):
        import ipywidgets as w

        self.rows = list(rows)
        self.shown: list[dict[str, Any]] = []
        providers = sorted({r.get("provider", "") for r in self.rows})
        top = max([float(r.get("vram_gb") or 0) for r in self.rows] + [1.0])
        self.search = w.Text(placeholder="filter: 4090, A100, H100...", description="GPU")
        self.min_vram = w.FloatSlider(value=min(min_vram, top), min=0, max=top, step=1,
                                      description="min VRAM")
        self.provider = w.Dropdown(options=["all", *providers], value="all",
                                   description="provider")
        self.available_only = w.Checkbox(value=False, description="available only")
        self.listing = w.Select(options=[], rows=10,
                                layout=w.Layout(width="100%"))
        self.name = w.Text(value="NAME", description="name")
        self.command = w.Text(description="deploy", layout=w.Layout(width="100%"))
        self.count = w.HTML()
        for control in (self.search, self.min_vram, self.provider, self.available_only):
            control.observe(lambda _: self.refilter(), names="value")
        self.listing.observe(lambda _: self.choose(), names="value")
        self.name.observe(lambda _: self.choose(), names="value")
        self.widget = w.VBox([w.HBox([self.search, self.provider]),
                              w.HBox([self.min_vram, self.available_only]), self.count,
                              self.listing, w.HBox([self.name]), self.command])
        self.surface = display.Surface()
        self.refilter()

    def refilter(self) -> None:
        self.shown = filter_rows(self.rows, self.search.value, self.min_vram.value,
                                 self.provider.value, self.available_only.value)
        self.listing.options = [(label(r), i) for i, r in enumerate(self.shown)]
        self.count.value = f"{len(self.shown)} of {len(self.rows)} GPUs"
        self.listing.value = 0 if self.shown else None
        self.choose()

    def choose(self) -> None:
        index = self.listing.value
        if index is None or index >= len(self.shown):
            self.command.value = ""
            return
        self.command.value = deploy_command(self.shown[index], self.name.value.strip())

    def show(self) -> None:
        text = table_text(self.shown)
        self.surface.show(display.bundle(text, display.pre(text), self.widget))
