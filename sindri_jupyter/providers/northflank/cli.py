"""The Northflank CLI: SSH proxy mode and the doctor lines about it.

Northflank has no public SSH address for a service. Its CLI opens one:
``northflank ssh service --projectId P --serviceId S --proxyOnly`` keeps
running and prints a local address such as ``127.24.1.1:37071``; plain ``ssh
-p``, scp or asyncssh then connect there with the key registered as a team
SSH identity (reference section 6.4). ``proxy_argv`` is what the provider
puts in ``Endpoint.extra["proxy"]``; ``SSHProxy.open`` runs it and reads the
address, for the SSH layer.

The CLI logs in on its own (``northflank login``); ``NORTHFLANK_API_TOKEN``
is never put on its command line.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass

from sindri_jupyter.core.types import Check
from sindri_jupyter.errors import SSHError

log = logging.getLogger(__name__)

EXECUTABLE = "northflank"
INSTALL = "npm install -g @northflank/cli"
ADDRESS_RE = re.compile(r"\b(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})\b")
PROBE_TIMEOUT = 20.0  # seconds for --version and context ls


def proxy_argv(project_id: str, service_id: str,
               executable: str = EXECUTABLE) -> list[str]:
    """The command line of the CLI's SSH proxy mode for one service."""
    return [executable, "ssh", "service", "--projectId", project_id,
            "--serviceId", service_id, "--proxyOnly"]


def parse_address(line: str) -> tuple[str, int] | None:
    """``(host, port)`` from a line of the proxy's output, else None."""
    found = ADDRESS_RE.search(line)
    if found is None or not 0 < int(found.group(2)) < 65536:
        return None
    return found.group(1), int(found.group(2))


@dataclass
class SSHProxy:
    """A running proxy process and the local address it serves."""

    host: str
    port: int
    process: asyncio.subprocess.Process

    @classmethod
    async def open(cls, argv: Sequence[str], timeout: float = 60.0) -> SSHProxy:
        """Start ``argv`` and wait (at most ``timeout`` s) for its address."""
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        except FileNotFoundError as exc:
            raise SSHError(f"{argv[0]} is not installed", step="connect",
                           hint=f"install the Northflank CLI: {INSTALL}") from exc
        try:
            host, port = await asyncio.wait_for(_address(process), timeout)
        except (asyncio.TimeoutError, SSHError) as exc:
            stderr = await _drain(process)
            if isinstance(exc, SSHError):
                raise SSHError(f"{exc.message}; {stderr}", step="connect",
                               hint=exc.hint) from exc
            raise SSHError(f"the Northflank SSH proxy printed no address within "
                           f"{timeout:.0f} s; {stderr}", step="connect",
                           hint="check `northflank context ls` (login) and that SSH "
                           "is enabled on the service") from exc
        log.info("Northflank SSH proxy for %s on %s:%d", argv[-3], host, port)
        return cls(host, port, process)

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 5.0)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()


async def _address(process: asyncio.subprocess.Process) -> tuple[str, int]:
    stdout = process.stdout
    if stdout is None:
        raise SSHError("the proxy has no stdout", step="connect")
    while True:  # bounded by the caller's wait_for and by end of output
        line = await stdout.readline()
        if not line:
            raise SSHError(f"the Northflank SSH proxy exited ({process.returncode})",
                           step="connect",
                           hint="check `northflank context ls` and that SSH is "
                           "enabled on the service")
        found = parse_address(line.decode(errors="replace"))
        if found is not None:
            return found


async def _drain(process: asyncio.subprocess.Process) -> str:
    if process.returncode is None:
        process.kill()
    _, err = await process.communicate()
    text = err.decode(errors="replace").strip().splitlines()
    return "stderr: " + " | ".join(text[-3:]) if text else "no stderr"


async def _run(argv: Sequence[str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(process.communicate(), PROBE_TIMEOUT)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        return -1, f"no answer within {PROBE_TIMEOUT:.0f} s"
    return process.returncode or 0, out.decode(errors="replace").strip()


async def checks(executable: str = EXECUTABLE) -> list[Check]:
    """Doctor lines: the CLI is installed, its version, and that it is logged in."""
    path = shutil.which(executable)
    if path is None:
        return [Check("northflank CLI", False, f"{executable} is not on PATH; it "
                      "gives SSH access to Northflank services", fix=INSTALL)]
    code, out = await _run([path, "--version"])
    if code != 0:
        return [Check("northflank CLI", False, f"{path} --version failed: {out[:200]}",
                      fix=f"reinstall it: {INSTALL}")]
    version = out.splitlines()[-1] if out else "unknown"
    found = [Check("northflank CLI", True, f"{path}, version {version}")]
    code, out = await _run([path, "context", "ls"])
    logged_in = code == 0 and "(current)" in out
    found.append(Check(
        "northflank CLI login", logged_in,
        "a current context is set" if logged_in else
        f"no current login context ({out.splitlines()[-1][:160] if out else code})",
        fix=None if logged_in else "run `northflank login` (opens a browser) and "
        "pick the team that owns the API token"))
    return found
