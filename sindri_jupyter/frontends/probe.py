"""Ask an environment's kernel about its GPUs and its activity, invisibly.

The question travels as ``user_expressions`` of a silent, empty execute
request: nothing is printed in the user's notebook, nothing enters the remote
history, and ``execution_count`` does not move, so it can tell us whether the
user ran anything since the last look. A kernel busy with a long cell answers
only when that cell ends; the probe's deadline turns that into ``busy``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 8.0

_SMI = ("__import__('subprocess').run(['nvidia-smi', '--query-gpu=name,"
        "utilization.gpu,memory.used,memory.total', '--format=csv,noheader,nounits'],"
        " capture_output=True, text=True, timeout=5).stdout")
_COUNT = "get_ipython().execution_count"


@dataclass
class GpuUse:
    name: str
    utilization: float  # percent
    memory_used_mb: float
    memory_total_mb: float


@dataclass
class Probe:
    """One look at an environment's kernel."""

    answered: bool
    gpus: list[GpuUse] = field(default_factory=list)
    execution_count: int | None = None
    note: str = ""

    def gpu_text(self) -> str:
        if not self.answered:
            return self.note or "kernel busy"
        if not self.gpus:
            return "no GPU"
        return "; ".join(f"{g.name} {g.utilization:.0f}% · "
                         f"{g.memory_used_mb / 1024:.1f}/{g.memory_total_mb / 1024:.1f} GB"
                         for g in self.gpus)


def parse_smi(text: str) -> list[GpuUse]:
    """Rows of ``nvidia-smi --query-gpu=name,utilization.gpu,memory.used,memory.total``."""
    gpus = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.rsplit(",", 3)]
        if len(parts) != 4:
            continue
        try:
            gpus.append(GpuUse(parts[0], float(parts[1]), float(parts[2]), float(parts[3])))
        except ValueError:
            continue  # "[N/A]" on some virtual GPUs: not a number we can show
    return gpus


async def probe(record, timeout: float = PROBE_TIMEOUT) -> Probe:
    """Probe the kernel of a ready environment; never raises for a busy kernel."""
    from sindri_jupyter.errors import SindriError
    from sindri_jupyter.remote import hosts

    kernel = hosts.environment_kernel(record, None, with_env=False)
    try:
        info = await kernel.connection_info()
        reply = await asyncio.wait_for(_ask(info), timeout)
    except asyncio.TimeoutError:
        return Probe(False, note="kernel busy")
    except SindriError as exc:
        log.debug("probe of %s failed: %s", record.name, exc)
        return Probe(False, note="kernel unreachable")
    finally:
        await kernel.host.aclose()
    return _read(reply)


async def _ask(info: dict[str, Any]) -> dict[str, Any]:
    from jupyter_client.asynchronous import AsyncKernelClient

    client = AsyncKernelClient()
    client.load_connection_info(info)
    client.start_channels()
    try:
        msg_id = client.execute("", silent=True, store_history=False,
                                user_expressions={"smi": _SMI, "count": _COUNT})
        while True:  # bounded by the caller's wait_for
            reply = await client.get_shell_msg()
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"]
    finally:
        client.stop_channels()


def _read(content: dict[str, Any]) -> Probe:
    expressions = content.get("user_expressions", {})
    smi, count = expressions.get("smi", {}), expressions.get("count", {})
    gpus = []
    if smi.get("status") == "ok":
        gpus = parse_smi(_plain(smi))
    executed = None
    if count.get("status") == "ok":
        try:
            executed = int(_plain(count))
        except ValueError:
            executed = None
    return Probe(True, gpus=gpus, execution_count=executed)


def _plain(result: dict[str, Any]) -> str:
    """The repr that user_expressions return, unquoted for strings."""
    import ast

    text = result.get("data", {}).get("text/plain", "")
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return str(value)
