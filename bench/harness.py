"""A small benchmark harness: interleaved runs, medians, ratios to a baseline.

The machines are shared and noisy, so a figure is only ever reported as a ratio
(or a difference) against a baseline measured side by side in the same run,
alternating subject and baseline so that drift hits both alike.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / ".bench-out"


def interleave(baseline: Callable[[], dict], subject: Callable[[], dict],
               repeat: int) -> tuple[list[dict], list[dict]]:
    """Run both ``repeat`` times, alternating, after one warm-up each."""
    baseline(), subject()
    base, subj = [], []
    for _ in range(repeat):
        base.append(baseline())
        subj.append(subject())
    return base, subj


def median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def python_probe(code: str, env: dict | None = None) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(name: str, figures: dict) -> None:
    """Print the figures and keep them in .bench-out/NAME.json."""
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(figures, indent=2))
    width = max(len(k) for k in figures)
    print(f"== {name}")
    for key, value in figures.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"  {key.ljust(width)}  {shown}")
