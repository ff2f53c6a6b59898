"""A Jupyter kernel provisioner that connects to an environment's kernel.

``sindri attach NAME`` writes a kernelspec whose provisioner is this class, so
JupyterLab can switch a notebook to the environment. The provisioner never
provisions a machine (Jupyter gives a kernel 60 s to answer): the environment
must be deployed; it starts or finds the environment kernel on its host and
forwards its ports. Interrupts travel as messages (``interrupt_mode``), so no
signal has to cross SSH. Restart and shutdown stop the environment kernel on
its host; the machine keeps running until ``sindri stop`` or ``destroy``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

from jupyter_client.provisioning.provisioner_base import KernelProvisionerBase
from traitlets import Unicode

from sindri_jupyter.errors import KernelError

POLL_EVERY_S = 15.0
START_TIMEOUT_S = 50.0


async def _on_sindri_loop(coro):
    """Run on sindri's own loop thread, whatever loop Jupyter calls us from.

    The SSH connection and its forwards live on one loop; jupyter_client's
    blocking managers call each provisioner method in a fresh loop, which
    would orphan them.
    """
    from sindri_jupyter.core import sync

    return await asyncio.wrap_future(sync.submit(coro))


class SindriProvisioner(KernelProvisionerBase):
    """Who calls it: jupyter_client's KernelManager, for kernelspecs from ``attach``."""

    environment = Unicode(config=True, help="name of the sindri environment")
    sindri_home = Unicode("", config=True, help="SINDRI_HOME where it is recorded")

    _kernel = None
    _alive: bool | None = None
    _checked_at = 0.0
    _launched = False

    @property
    def has_process(self) -> bool:
        return self._launched

    def _use_home(self) -> None:
        if self.sindri_home:
            os.environ["SINDRI_HOME"] = self.sindri_home

    def _environment_kernel(self):
        from sindri_jupyter.core.state import Store
        from sindri_jupyter.remote import hosts

        self._use_home()
        record = Store.default().get(self.environment)
        if record.phase != "ready":
            raise KernelError(
                f"{self.environment} is {record.phase}, not ready",
                hint=f"run `sindri start {self.environment}` (or deploy it), then "
                "restart this kernel",
            )
        return record, hosts.environment_kernel(record, None)

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        """The kernelspec's argv is never run; Jupyter still expects a ``cmd``."""
        kwargs = await super().pre_launch(**kwargs)
        kwargs.setdefault("cmd", list(self.kernel_spec.argv))
        return kwargs

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> dict[str, Any]:
        record, kernel = self._environment_kernel()
        facts = await _on_sindri_loop(kernel.start(START_TIMEOUT_S))
        self._record_pid(record, facts)
        info = await _on_sindri_loop(kernel.connection_info())
        info["key"] = info["key"].encode()  # jupyter_client compares bytes keys
        self._kernel, self._launched, self._alive = kernel, True, True
        self._checked_at = time.monotonic()
        self.connection_info = info
        self.log.info("sindri: attached to %s (kernel pid %s)", self.environment,
                      facts["pid"])
        return info

    @staticmethod
    def _record_pid(record, facts: dict[str, Any]) -> None:
        """Keep the store's kernel facts current, so `sindri run` follows a restart."""
        from sindri_jupyter.core.state import Store

        known = (record.handle_data.get("kernel") or {}).get("pid")
        if known != facts["pid"]:
            data = dict(record.handle_data, kernel=facts)
            Store.default().update(record.name, handle_data=data)

    async def poll(self) -> int | None:
        if not self._launched or self._kernel is None:
            return 1
        if time.monotonic() - self._checked_at > POLL_EVERY_S:
            self._checked_at = time.monotonic()
            try:
                self._alive = await _on_sindri_loop(self._kernel.alive(POLL_EVERY_S))
            except KernelError as exc:
                self.log.warning("sindri: cannot check %s: %s", self.environment, exc)
        return None if self._alive else 1

    async def wait(self) -> int | None:
        self._checked_at = 0.0
        return await self.poll()

    async def send_signal(self, signum: int) -> None:
        if signum == 0:
            await self.poll()
        elif signum in (signal.SIGTERM, signal.SIGKILL):
            await self.kill()
        else:
            self.log.debug("sindri: signal %s ignored; interrupts go by message", signum)

    async def kill(self, restart: bool = False) -> None:
        """Make sure the environment kernel is gone (Jupyter asked it already)."""
        if self._kernel is not None:
            await _on_sindri_loop(self._kernel.stop(START_TIMEOUT_S))
        self._alive, self._checked_at = False, time.monotonic()

    async def terminate(self, restart: bool = False) -> None:
        await self.kill(restart)

    async def cleanup(self, restart: bool = False) -> None:
        if self._kernel is not None:
            await _on_sindri_loop(self._kernel.host.aclose())
        self._kernel, self._launched = None, False

    async def get_provisioner_info(self) -> dict[str, Any]:
        info = await super().get_provisioner_info()
        info.update(environment=self.environment, sindri_home=self.sindri_home)
        return info

    async def load_provisioner_info(self, provisioner_info: dict) -> None:
        """Re-attach after a Jupyter server restart: rebuild the forwards."""
        await super().load_provisioner_info(provisioner_info)
        self.environment = provisioner_info["environment"]
        self.sindri_home = provisioner_info.get("sindri_home", "")
        _record, self._kernel = self._environment_kernel()
        info = await _on_sindri_loop(self._kernel.connection_info())
        info["key"] = info["key"].encode()
        self.connection_info = info
        self._launched, self._alive = True, True

    def get_shutdown_wait_time(self, recommended: float = 5.0) -> float:
        return max(recommended, 10.0)
