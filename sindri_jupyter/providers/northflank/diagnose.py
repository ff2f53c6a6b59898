"""Why a deployment failed or hangs: its reason, containers and last log lines.

Northflank reports no distinct status for a failing image pull or a GPU that
cannot be scheduled; the rollout stays ``PENDING``/``IN_PROGRESS`` or ends
``FAILED`` (reference section 5.1). When it failed, or has not moved for
``stuck_after`` seconds, ``Diagnoser.explain`` adds the reason, the container
states and the last log lines to ``Observed.message``. The two extra requests
are made at most once per ``REFRESH`` seconds per environment, so a long wait
does not spend the account's budget on logs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sindri_jupyter.core.types import State
from sindri_jupyter.errors import ProviderAPIError
from sindri_jupyter.providers.northflank.api import NorthflankApi

REFRESH = 300.0  # seconds between two diagnoses of one environment
LOG_LINES = 10
LINE_MAX = 200  # characters kept of one log line
WAITING = (State.PENDING, State.PROVISIONING, State.STARTING)


class Diagnoser:
    """Remembers when each environment entered its status, and the last diagnosis."""

    def __init__(self, api: NorthflankApi, clock: Callable[[], float],
                 stuck_after: float) -> None:
        self.api, self.clock, self.stuck_after = api, clock, stuck_after
        self._since: dict[str, tuple[str, float]] = {}
        self._cached: dict[str, tuple[float, str]] = {}

    async def explain(self, key: str, project: str, service: str,
                      data: dict[str, Any], state: State) -> str:
        """Empty while all is well; else reason, containers and log lines."""
        deployment = (data.get("status") or {}).get("deployment") or {}
        status, now = str(deployment.get("status")), self.clock()
        if self._since.get(key, ("",))[0] != status:
            self._since[key] = (status, now)
            self._cached.pop(key, None)
        waited = now - self._since[key][1]
        stuck = state in WAITING and waited >= self.stuck_after
        if state is not State.FAILED and not stuck:
            return ""
        cached = self._cached.get(key)
        if cached is not None and now - cached[0] < REFRESH:
            return cached[1]
        head = _reason(deployment, stuck, waited)
        text = f"{head}; {await self._evidence(project, service)}"
        self._cached[key] = (now, text)
        return text

    async def _evidence(self, project: str, service: str) -> str:
        api = self.api
        try:
            listed = await api.call("list the containers",
                                    api.sdk.get.service.containers,
                                    project_id=project, service_id=service)
            lines = await api.logs(project, service, LOG_LINES)
        except ProviderAPIError as exc:  # the diagnosis must not hide the state
            return f"containers and logs unavailable: {exc.message}"
        containers = ", ".join(f"{c.get('name')} {c.get('status')}"
                               for c in (listed or {}).get("containers", [])) or "none"
        shown = " | ".join(line.strip()[:LINE_MAX] for line in lines[-LOG_LINES:])
        return (f"containers: {containers}; last log lines: {shown or '(none)'}; "
                f"see `northflank` UI > {project} > {service} > Logs")


def _reason(deployment: dict[str, Any], stuck: bool, waited: float) -> str:
    reason = deployment.get("reason") or "unknown reason"
    said = deployment.get("message")
    head = (f"stuck in {deployment.get('status')} for {waited:.0f} s ({reason})"
            if stuck else f"rollout failed ({reason})")
    if said:
        head += f": {said}"
    if stuck:
        head += ("; common causes: a slow or failing image pull, no GPU capacity, "
                 "a crashing command")
    return head
