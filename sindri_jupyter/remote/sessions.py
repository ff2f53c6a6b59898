"""Open kernel sessions, kept per environment for the life of the process.

``%%sindri run`` in a notebook runs many cells against the same environment;
opening an SSH connection, five forwards and ZeroMQ sockets for each would
dominate a short cell. A ``Session`` keeps them open on the loop thread and is
rebuilt when the environment's record changes (a restart gives new ports).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sindri_jupyter.errors import KernelError
from sindri_jupyter.remote.envkernel import EnvironmentKernel
from sindri_jupyter.remote.kernel import ExecutionResult, KernelClient, OutputHook

log = logging.getLogger(__name__)

START_TIMEOUT_S = 120.0


@dataclass
class Session:
    name: str
    pid: int | None
    kernel: EnvironmentKernel
    client: KernelClient
    lock: asyncio.Lock

    async def execute(self, code: str, on_output: OutputHook) -> ExecutionResult:
        async with self.lock:
            return await self.client.execute(code, on_output)

    async def close(self) -> None:
        self.client.close()
        await self.kernel.host.aclose()


_open: dict[str, Session] = {}


async def session(name: str) -> Session:
    """The open session of ``name``, opening (or reopening) it when needed."""
    from sindri_jupyter.core.state import Store
    from sindri_jupyter.remote import hosts

    record = Store.default().get(name)
    if record.phase in ("waiting", "connecting", "failed"):
        record = await _finish_deploy(name)
    if record.phase != "ready":
        raise KernelError(f"{name} is not ready ({record.phase}, {record.state})",
                          hint=f"`sindri start {name}` or `sindri status {name}`")
    pid = (record.handle_data.get("kernel") or {}).get("pid")
    current = _open.get(name)
    if current is not None and current.pid == pid:
        return current
    if current is not None:
        await close(name)
    kernel = hosts.environment_kernel(record, None)
    facts = await kernel.start(START_TIMEOUT_S)
    if facts["pid"] != pid:
        _note_new_kernel(record, facts)
    client = await kernel.connect()
    _open[name] = Session(name, facts["pid"], kernel, client, asyncio.Lock())
    return _open[name]


async def _finish_deploy(name: str):
    """A deploy made with --no-wait (or one that failed late): wait for it now."""
    from sindri_jupyter.core.engine import Engine

    log.warning("%s was not ready yet; waiting for it (as `sindri deploy` would)", name)
    engine = Engine()
    try:
        return await engine.wait_ready(name)
    finally:
        await engine.aclose()


def _note_new_kernel(record, facts: dict) -> None:
    """The kernel had ended (a Jupyter shutdown, a reboot): say its state is new."""
    from sindri_jupyter.core.state import Store

    log.warning("the kernel of %s had stopped; started a fresh one (pid %s): "
                "earlier variables are gone", record.name, facts["pid"])
    Store.default().update(record.name, handle_data=dict(record.handle_data, kernel=facts))
    Store.default().add_event(record.name, "kernel", f"kernel restarted (pid {facts['pid']})")


async def close(name: str) -> None:
    found = _open.pop(name, None)
    if found is not None:
        await found.close()


async def close_all() -> None:
    for name in list(_open):
        await close(name)
