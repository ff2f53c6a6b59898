"""Budget, lifetime and idle limits: what stops a forgotten environment.

Two guards enforce them. On the host, the environment kernel's watchdog (see
``remote.bootstrap``) stops the kernel when idle or out of time, and the
machine too where the provider lets it (RunPod's ``runpodctl``), so a closed
laptop does not leave a pod billing. Here, ``Engine.status`` (every ``sindri
status`` and every status-panel refresh) stops an environment through the
provider API once its accrued cost or lifetime passes the limit.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sindri_jupyter.config.models import SindriConfig
    from sindri_jupyter.core.state import Record


def from_config(config: "SindriConfig") -> dict[str, Any]:
    """The limits a deploy records with the environment (nothing when unset)."""
    deployment = config.deployment
    limits = {"budget_usd": deployment.budget_usd,
              "max_lifetime_hours": deployment.max_lifetime_hours,
              "idle_stop_minutes": deployment.idle_stop_minutes}
    return {k: v for k, v in limits.items() if v is not None}


def seconds_left(record: "Record", now: float | None = None) -> float | None:
    """Seconds until the budget or the lifetime runs out; None when unlimited."""
    limits = record.handle_data.get("limits") or {}
    now = time.time() if now is None else now
    left: list[float] = []
    if limits.get("max_lifetime_hours") is not None:
        left.append(record.created_at + limits["max_lifetime_hours"] * 3600 - now)
    price = record.price_per_hour or 0.0
    if limits.get("budget_usd") is not None and price > 0:
        left.append((limits["budget_usd"] - record.accrued(now)) / price * 3600)
    return max(0.0, min(left)) if left else None


def breach(record: "Record", now: float | None = None) -> str | None:
    """Why this running environment must stop now, or None."""
    limits = record.handle_data.get("limits") or {}
    now = time.time() if now is None else now
    budget = limits.get("budget_usd")
    if budget is not None and record.accrued(now) >= budget:
        return f"its cost ${record.accrued(now):.2f} reached the budget ${budget:.2f}"
    hours = limits.get("max_lifetime_hours")
    if hours is not None and now - record.created_at >= hours * 3600:
        return f"it reached its lifetime of {hours:g} h"
    return None


def notes(config: "SindriConfig", price_per_hour: float | None) -> list:
    """How each limit of the config will be honoured, for the plan."""
    from sindri_jupyter.core.types import Note

    deployment, out = config.deployment, []
    if deployment.budget_usd is not None:
        hours = (f"about {deployment.budget_usd / price_per_hour:.1f} h at this price"
                 if price_per_hour else "no cost accrues at this price")
        out.append(Note("deployment.budget_usd", "honoured",
                        f"stopped at ${deployment.budget_usd:.2f} ({hours})"))
    if deployment.max_lifetime_hours is not None:
        out.append(Note("deployment.max_lifetime_hours", "honoured",
                        f"stopped {deployment.max_lifetime_hours:g} h after creation"))
    if deployment.idle_stop_minutes is not None:
        out.append(Note("deployment.idle_stop_minutes", "honoured",
                        f"kernel stopped after {deployment.idle_stop_minutes:g} min "
                        "without CPU or GPU work (the pod too, on RunPod)"))
    return out
