"""The environment kernel: one per environment, started on its host, detached.

A ``Host`` runs the bootstrap script and makes the kernel's ports reachable
here. ``LocalHost`` runs it with a local Python; the SSH host does the same
through an SSH channel and port forwards. Everything else (the HMAC key, the
pin of which kernel belongs to which environment, the readiness check) is the
same code for every provider.

The local record of a kernel, ``SINDRI_HOME/envs/NAME/kernel.json`` (mode
0600), holds the HMAC key and the kernel's ports on its host; the state store
holds only the pid and the Python version.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Protocol

from sindri_jupyter.errors import KernelError
from sindri_jupyter.remote import bootstrap
from sindri_jupyter.remote.kernel import KernelClient


class Host(Protocol):
    """Where an environment kernel runs. Who calls it: ``EnvironmentKernel``."""

    async def run_python(self, script: str, timeout: float) -> str:
        """Run ``script`` with the host's Python (script on stdin); return stdout."""

    async def reach(self, ports: dict[str, int]) -> dict[str, int]:
        """Local ports that reach the kernel's ports on the host."""

    async def aclose(self) -> None: ...


class LocalHost:
    """This machine: the script runs under ``python``, the ports are direct."""

    def __init__(self, python: str | None = None):
        self.python = python or sys.executable

    async def run_python(self, script: str, timeout: float) -> str:
        try:
            proc = await asyncio.create_subprocess_exec(
                self.python, "-", stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise KernelError(f"no Python at {self.python!r}",
                              hint="set providers.local.python to an interpreter "
                              "on PATH or a full path") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(script.encode()), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            raise KernelError(f"starting the kernel took over {timeout:.0f} s") from None
        if proc.returncode != 0:
            raise KernelError(f"the kernel bootstrap failed: {err.decode()[-2000:]}",
                              hint=f"check that {self.python} is Python 3 with ipykernel")
        return out.decode()

    async def reach(self, ports: dict[str, int]) -> dict[str, int]:
        return dict(ports)

    async def aclose(self) -> None:
        return None


class EnvironmentKernel:
    """Start, check, connect to and stop the kernel of one environment."""

    def __init__(self, name: str, host: Host, local_dir: Path, host_workdir: str,
                 *, python: str | None = None, cwd: str | None = None,
                 env: dict[str, str] | None = None, limits: dict | None = None):
        self.name = name
        self.host = host
        self.record_path = Path(local_dir) / "kernel.json"
        self.host_workdir = host_workdir
        self.python = python
        self.cwd = cwd
        self.env = env or {}
        self.limits = limits or {}

    def _load(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.record_path.read_text())
        except FileNotFoundError:
            return None

    def _save(self, record: dict[str, Any]) -> None:
        fd = os.open(self.record_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(record, f)

    async def start(self, timeout: float) -> dict[str, Any]:
        """Start the kernel, or find the one already running; return its facts."""
        record = self._load() or {}
        key = record.get("key") or secrets.token_hex(32)
        script = bootstrap.script(
            "start", key=key, workdir=self.host_workdir, name=self.name,
            python=self.python, cwd=self.cwd, env=self.env, limits=self.limits,
        )
        reply = bootstrap.parse_reply(await self.host.run_python(script, timeout))
        if not reply.get("ok"):
            raise KernelError(
                f"could not start the kernel of {self.name!r}: "
                f"{reply.get('error', 'no answer from the bootstrap')}",
                hint="install ipykernel on the host (pip install ipykernel)",
            )
        self._save({"key": key, "ports": reply["ports"], "pid": reply["pid"],
                    "python": reply.get("python", "")})
        return {"pid": reply["pid"], "python": reply.get("python", ""),
                "reused": reply.get("reused", False),
                "installed_ipykernel_into": reply.get("installed_ipykernel_into")}

    async def alive(self, timeout: float) -> bool:
        reply = bootstrap.parse_reply(await self.host.run_python(
            bootstrap.script("status", key="", workdir=self.host_workdir), timeout))
        return bool(reply.get("alive"))

    async def stop(self, timeout: float, *, remove: bool = False) -> None:
        """Stop the kernel; with ``remove`` also delete its working folder on the host."""
        await self.host.run_python(bootstrap.script(
            "stop", key="", workdir=self.host_workdir, remove=remove), timeout)
        self.record_path.unlink(missing_ok=True)

    async def connection_info(self) -> dict[str, Any]:
        """Connection info with local ports; KernelError when none is recorded."""
        record = self._load()
        if record is None:
            raise KernelError(
                f"no kernel is recorded for {self.name!r}",
                hint=f"run `sindri start {self.name}` (or deploy it again)",
            )
        ports = await self.host.reach(record["ports"])
        return dict(ports, ip="127.0.0.1", transport="tcp", key=record["key"],
                    signature_scheme="hmac-sha256")

    async def connect(self) -> KernelClient:
        """A client with its channels started; the caller closes it."""
        return await KernelClient(await self.connection_info()).__aenter__()

    @asynccontextmanager
    async def client(self) -> AsyncIterator[KernelClient]:
        """A connected client for one use."""
        async with KernelClient(await self.connection_info()) as client:
            yield client

    async def wait_answers(self, timeout: float) -> dict[str, Any]:
        """Ready means the kernel answers kernel_info, not just that it started."""
        async with self.client() as client:
            return await client.kernel_info(timeout)
