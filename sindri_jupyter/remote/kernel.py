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
# An idle client proves its channels before sending code (a link may have dropped).
PROBE_AFTER_S = 1.0
PROBE_WAIT_S = 2.0
RECOVER_S = 120.0
# Silence before a fence: short while the kernel has shown no sign of our request.
FENCE_NEW_S = 3.0
FENCE_BUSY_S = 15.0
IDLE_GRACE_S = 5.0
READ_POLL_S = 1.0

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
    """An async client for one kernel; use ``async with``.

    Two reader tasks take every message off the shell and iopub channels and
    route it, by its parent's msg_id, to whoever asked (an execute, a probe).
    Waiting on both channels at once keeps a trivial cell at one round trip.
    """

    def __init__(self, connection_info: dict[str, Any]):
        from jupyter_client.asynchronous import AsyncKernelClient

        self._client = AsyncKernelClient()
        self._client.load_connection_info(dict(connection_info))
        self._started = False
        self._last_contact = 0.0
        self._routes: dict[str, asyncio.Queue] = {}
        self._readers: list[asyncio.Task] = []

    async def __aenter__(self) -> "KernelClient":
        self._client.start_channels()
        self._started = True
        self._readers = [asyncio.ensure_future(self._read(self._client.get_shell_msg,
                                                          "shell")),
                         asyncio.ensure_future(self._read(self._client.get_iopub_msg,
                                                          "iopub"))]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for task in self._readers:
            task.cancel()
        self._readers = []
        if self._started:
            self._client.stop_channels()
            self._started = False

    async def _read(self, get, channel: str) -> None:
        while True:
            try:
                msg = await get(timeout=READ_POLL_S)
            except queue.Empty:
                continue
            route = self._routes.get(msg["parent_header"].get("msg_id"))
            if route is not None:
                route.put_nowait((channel, msg))

    def _send(self, msg_id: str, route: asyncio.Queue | None = None) -> asyncio.Queue:
        self._routes[msg_id] = route if route is not None else asyncio.Queue()
        return self._routes[msg_id]

    def _forget(self, *msg_ids: str | None) -> None:
        for msg_id in msg_ids:
            self._routes.pop(msg_id, None)

    async def kernel_info(self, timeout: float) -> dict[str, Any]:
        """Ask the kernel who it is; KernelError when it does not answer in time."""
        try:
            reply, _ = await self._probe(timeout, need_idle=False)
        except asyncio.TimeoutError:
            raise KernelError(
                f"the kernel did not answer kernel_info within {timeout:.0f} s",
                hint="check the environment with `sindri status NAME`; "
                "`sindri stop NAME && sindri start NAME` restarts its kernel",
            ) from None
        return reply["content"]

    async def _probe(self, wait: float, *, need_idle: bool) -> tuple[dict, bool]:
        """One kernel_info: its shell reply and (if asked) its iopub idle."""
        msg_id = self._client.kernel_info()
        route = self._send(msg_id)
        deadline = time.monotonic() + wait
        reply, idle = None, False
        try:
            while reply is None or (need_idle and not idle):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise asyncio.TimeoutError
                channel, msg = await asyncio.wait_for(route.get(), left)
                if channel == "shell":
                    reply = msg
                elif _is_idle(msg):
                    idle = True
        finally:
            self._forget(msg_id)
        return reply, idle

    async def interrupt(self) -> None:
        """Interrupt by message on the control channel (works across SSH)."""
        msg = self._client.session.msg("interrupt_request", {})
        self._client.control_channel.send(msg)
        log.debug("interrupt_request sent")

    async def execute(self, code: str, on_output: OutputHook,
                      timeout: float | None = None) -> ExecutionResult:
        """Run ``code``; relay its outputs; on cancellation interrupt the kernel.

        ``timeout`` bounds the whole run; None waits as long as the code runs
        (the user's Ctrl-C ends it). A dropped SSH link may lose the request or
        the reply in flight: ``_Run`` notices silence and sends a fence.
        """
        if time.monotonic() - self._last_contact > PROBE_AFTER_S:
            await self.ensure_channels(RECOVER_S)
        run = _Run(self, code, on_output)
        try:
            content = await asyncio.wait_for(run.follow(), timeout)
        except asyncio.CancelledError:
            await self.interrupt()
            content = await asyncio.shield(asyncio.wait_for(run.follow(), 30.0))
            run.interrupted = True
        except asyncio.TimeoutError:
            raise KernelError(f"the code did not finish within {timeout:.0f} s",
                              hint="it may still run; interrupt it with Ctrl-C") from None
        finally:
            run.done()
        self._last_contact = time.monotonic()
        return ExecutionResult(
            status=content.get("status", "error"),
            execution_count=content.get("execution_count"),
            ename=content.get("ename", ""),
            evalue=content.get("evalue", ""),
            traceback=list(content.get("traceback", [])),
            interrupted=run.interrupted or content.get("ename") == "KeyboardInterrupt",
        )

    async def ensure_channels(self, budget: float) -> None:
        """Prove shell and iopub both work: a kernel_info reply and its idle."""
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline:
            try:
                await self._probe(PROBE_WAIT_S, need_idle=True)
            except asyncio.TimeoutError:
                log.debug("kernel channels not answering yet; probing again")
                continue
            self._last_contact = time.monotonic()
            return
        raise KernelError(f"the kernel did not answer on all channels within {budget:.0f} s",
                          hint="the connection may be down; `sindri status NAME` checks it")


def _is_idle(msg: dict[str, Any]) -> bool:
    return (msg["header"]["msg_type"] == "status"
            and msg["content"].get("execution_state") == "idle")


class _Run:
    """One execution followed on iopub and shell, robust to a dropped link.

    Shell messages are handled in order, so a kernel_info sent after our
    execute (a fence) is answered only once our execute is done: a fence reply
    without ours means our reply was lost. With no sign of our request on
    either channel, the request is taken as lost and sent once more; should the
    kernel have run it while both its reply and every iopub message were lost,
    it runs twice (that needs both channels to break mid-message).
    """

    def __init__(self, kernel: KernelClient, code: str, on_output: OutputHook):
        self.k, self.code, self.on_output = kernel, code, on_output
        self.interrupted = False
        self.route: asyncio.Queue = asyncio.Queue()
        self.msg_id = kernel._client.execute(code, allow_stdin=False)
        kernel._send(self.msg_id, self.route)
        self.seen = False  # any iopub message of ours: the kernel has it
        self.idle = False
        self.reply: dict[str, Any] | None = None
        self.fence: str | None = None
        self.fenced = False
        self.resent = False

    def done(self) -> None:
        self.k._forget(self.msg_id, self.fence)

    async def follow(self) -> dict[str, Any]:
        while not (self.reply is not None and self.idle):
            silence = (IDLE_GRACE_S if self.reply is not None
                       else FENCE_BUSY_S if self.seen else FENCE_NEW_S)
            try:
                channel, msg = await asyncio.wait_for(self.route.get(), silence)
            except asyncio.TimeoutError:
                if self.reply is not None:
                    self._lose("iopub idle")
                    break
                if self.fence is None:
                    self.fence = self.k._client.kernel_info()
                    self.k._send(self.fence, self.route)
                continue
            self._take(channel, msg)
            if self.fenced and self.reply is None:
                if not self.seen and not self.resent:
                    log.warning("the execute request was lost in a reconnect; resending")
                    self._resend()
                    continue
                self._lose("execute reply")
                return {"status": "ok"}
        return self.reply or {"status": "ok"}

    def _take(self, channel: str, msg: dict[str, Any]) -> None:
        parent = msg["parent_header"].get("msg_id")
        if parent == self.fence:
            self.fenced = self.fenced or channel == "shell"
        elif parent != self.msg_id:
            return
        elif channel == "shell":
            self.reply = msg["content"]
        else:
            self.seen = True
            kind = msg["header"]["msg_type"]
            if _is_idle(msg):
                self.idle = True
            elif kind in RELAYED:
                self.on_output(kind, msg["content"])

    def _resend(self) -> None:
        self.k._forget(self.msg_id, self.fence)
        self.msg_id = self.k._client.execute(self.code, allow_stdin=False)
        self.k._send(self.msg_id, self.route)
        self.resent, self.fence, self.fenced = True, None, False

    def _lose(self, what: str) -> None:
        log.warning("the %s of a cell was lost in a reconnect; its outputs may be "
                    "incomplete", what)


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
