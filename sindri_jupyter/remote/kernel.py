"""The client side of an environment kernel: execute, relay, interrupt.

One ``KernelClient`` talks to a kernel whose five ports are reachable on this
machine's loopback, directly (``local``) or through SSH forwards. Output is
handed to an ``on_output(msg_type, content)`` callback in the order the kernel
sent it; front-ends decide how to show it (``TerminalRelay`` for the CLI).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from sindri_jupyter.errors import KernelError

log = logging.getLogger(__name__)

OutputHook = Callable[[str, dict[str, Any]], None]
RELAYED = {"stream", "display_data", "update_display_data", "execute_result", "error",
           "clear_output"}


@dataclass
class ExecutionResult:
    status: str  # ok | error | aborted
    execution_count: int | None = None
    ename: str = ""
    evalue: str = ""
    traceback: list[str] = field(default_factory=list)
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class KernelClient:
    """An async client for one kernel; use ``async with``."""

    def __init__(self, connection_info: dict[str, Any]):
        from jupyter_client.asynchronous import AsyncKernelClient

        self._client = AsyncKernelClient()
        self._client.load_connection_info(dict(connection_info))
        self._started = False

    async def __aenter__(self) -> "KernelClient":
        self._client.start_channels()
        self._started = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._started:
            self._client.stop_channels()
            self._started = False

    async def kernel_info(self, timeout: float) -> dict[str, Any]:
        """Ask the kernel who it is; KernelError when it does not answer in time."""
        msg_id = self._client.kernel_info()
        try:
            reply = await self._reply(msg_id, timeout)
        except asyncio.TimeoutError:
            raise KernelError(
                f"the kernel did not answer kernel_info within {timeout:.0f} s",
                hint="check the environment with `sindri status NAME`; "
                "`sindri stop NAME && sindri start NAME` restarts its kernel",
            ) from None
        return reply["content"]

    async def _reply(self, msg_id: str, timeout: float | None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if left == 0.0:
                raise asyncio.TimeoutError
            try:
                msg = await self._client.get_shell_msg(timeout=left)
            except queue.Empty:
                raise asyncio.TimeoutError from None
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg

    async def interrupt(self) -> None:
        """Interrupt by message on the control channel (works across SSH)."""
        msg = self._client.session.msg("interrupt_request", {})
        self._client.control_channel.send(msg)
        log.debug("interrupt_request sent")

    async def execute(self, code: str, on_output: OutputHook,
                      timeout: float | None = None) -> ExecutionResult:
        """Run ``code``; relay its outputs; on cancellation interrupt the kernel.

        ``timeout`` bounds how long we wait for the kernel to go idle; None
        waits as long as the code runs (the user's Ctrl-C ends it).
        """
        msg_id = self._client.execute(code, allow_stdin=False)
        interrupted = False
        try:
            await self._relay(msg_id, on_output, timeout)
        except asyncio.CancelledError:
            interrupted = True
            await self.interrupt()
            await asyncio.shield(self._relay(msg_id, on_output, 30.0))
        reply = await self._reply(msg_id, 30.0)
        content = reply["content"]
        return ExecutionResult(
            status=content.get("status", "error"),
            execution_count=content.get("execution_count"),
            ename=content.get("ename", ""),
            evalue=content.get("evalue", ""),
            traceback=list(content.get("traceback", [])),
            interrupted=interrupted or content.get("ename") == "KeyboardInterrupt",
        )

    async def _relay(self, msg_id: str, on_output: OutputHook,
                     timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise KernelError(f"no idle status from the kernel within {timeout:.0f} s",
                                  hint="the code may still run; interrupt it with Ctrl-C")
            try:
                msg = await self._client.get_iopub_msg(timeout=1.0 if left is None
                                                       else min(left, 1.0))
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if kind == "status" and msg["content"].get("execution_state") == "idle":
                return
            if kind in RELAYED:
                on_output(kind, msg["content"])


class TerminalRelay:
    """Show kernel output in a terminal: stdout stays stdout, stderr stays stderr."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None):
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def __call__(self, kind: str, content: dict[str, Any]) -> None:
        if kind == "stream":
            target = self.err if content.get("name") == "stderr" else self.out
            target.write(content.get("text", ""))
            target.flush()
        elif kind in ("execute_result", "display_data", "update_display_data"):
            self.out.write(_plain(content.get("data", {})) + "\n")
            self.out.flush()
        elif kind == "error":
            self.err.write(_strip_ansi("\n".join(content.get("traceback", []))) + "\n")
            self.err.flush()


def _plain(data: dict[str, Any]) -> str:
    if "text/plain" in data:
        return str(data["text/plain"])
    kinds = ", ".join(sorted(data)) or "nothing"
    return f"[rich output: {kinds}; open it in a notebook]"


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)
