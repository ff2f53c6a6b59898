"""Local port forwards over one SSH connection, and reconnection after a drop.

``Tunnels`` listens on 127.0.0.1 ports the OS picks (so several environments
never collide) and carries each accepted connection to a remote 127.0.0.1
port over an SSH channel. The listeners belong to us, not to the SSH
connection: when the link drops, the open channels close but the local ports
stay bound, and the next connection a client makes (ZeroMQ reconnects on its
own) is carried over the new SSH connection. So a kernel client keeps its
ports across a reconnect.

``ReconnectingConnection`` owns the SSH connection: it notices a drop, connects
again with backoff until a deadline, and hands the current connection to the
tunnels. Auth and host-key failures are not retried: they need the user.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable, Iterable

import asyncssh

from sindri_jupyter.errors import SSHError
from sindri_jupyter.remote.ssh import SSHConnection, SSHTarget, connect

log = logging.getLogger(__name__)

RECONNECT_DEADLINE_S = 120.0
CHANNEL_OPEN_TIMEOUT_S = 30.0
# A wider window than asyncssh's 2 MiB default keeps a kernel streaming output
# busy over a link with latency; bigger packets cut per-packet overhead.
CHANNEL_WINDOW = 8 * 1024 * 1024
CHANNEL_PACKET = 256 * 1024

# Returns the SSH connection to open channels on, waiting for a reconnect if needed.
ConnectionGetter = Callable[[], Awaitable[SSHConnection]]


class Tunnels:
    """Forwards from local 127.0.0.1 ports to remote 127.0.0.1 ports."""

    def __init__(self, get_connection: ConnectionGetter) -> None:
        self._get_connection = get_connection
        self._servers: dict[int, asyncio.AbstractServer] = {}
        self.local_ports: dict[int, int] = {}  # remote port -> local port
        self._links: set[_LocalSide] = set()

    def __repr__(self) -> str:
        return f"<Tunnels {self.local_ports}>"

    async def add(self, remote_ports: Iterable[int]) -> dict[int, int]:
        """Listen for each remote port on a fresh local port; return the map."""
        loop = asyncio.get_running_loop()
        for remote_port in remote_ports:
            if remote_port in self.local_ports:
                continue
            server = await loop.create_server(
                lambda rp=remote_port: _LocalSide(self, rp), "127.0.0.1", 0
            )
            local_port = server.sockets[0].getsockname()[1]
            self._servers[remote_port] = server
            self.local_ports[remote_port] = local_port
            log.debug("forwarding 127.0.0.1:%d -> remote 127.0.0.1:%d",
                      local_port, remote_port)
        return dict(self.local_ports)

    async def close(self) -> None:
        """Stop listening and close every forwarded connection."""
        for server in self._servers.values():
            server.close()
        for link in list(self._links):
            link.close()
        for server in self._servers.values():
            await server.wait_closed()
        self._servers.clear()

    async def _open_channel(self, link: _LocalSide) -> None:
        # Two tries: a client that connects just as the link drops gets the
        # dying connection first, then the new one once it is back.
        for attempt in (1, 2):
            conn = None
            try:
                conn = await self._get_connection()
                channel, _ = await asyncio.wait_for(
                    conn.raw.create_connection(
                        lambda: _ChannelSide(link), "127.0.0.1", link.remote_port,
                        window=CHANNEL_WINDOW, max_pktsize=CHANNEL_PACKET,
                    ),
                    CHANNEL_OPEN_TIMEOUT_S,
                )
            except (SSHError, asyncssh.Error, OSError, asyncio.TimeoutError) as exc:
                if attempt == 1 and conn is not None and conn.is_closed:
                    continue
                # The client sees its connection close and may try again.
                # A refused port is routine (a kernel still starting, ZeroMQ
                # retrying every 100 ms), so it stays at debug level.
                level = (logging.DEBUG if isinstance(exc, asyncssh.ChannelOpenError)
                         else logging.WARNING)
                log.log(level, "forward to remote port %d failed: %s",
                        link.remote_port, exc)
                link.close()
                return
            link.attach(channel)
            return


class _LocalSide(asyncio.Protocol):
    """One accepted local connection; bytes go to its SSH channel."""

    def __init__(self, tunnels: Tunnels, remote_port: int) -> None:
        self.tunnels = tunnels
        self.remote_port = remote_port
        self.transport: asyncio.Transport | None = None
        self.channel: asyncssh.SSHTCPChannel | None = None
        self._opening: asyncio.Task | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Hold the bytes in the kernel's socket buffer until the channel is open.
        self.transport.pause_reading()
        self.tunnels._links.add(self)
        self._opening = asyncio.ensure_future(self.tunnels._open_channel(self))

    def attach(self, channel: asyncssh.SSHTCPChannel) -> None:
        if self.transport is None or self.transport.is_closing():
            channel.close()
            return
        self.channel = channel
        self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.channel is not None:
            self.channel.write(data)

    def eof_received(self) -> bool:
        if self.channel is not None:
            self.channel.write_eof()
        return True  # keep the other direction open until the channel closes

    def pause_writing(self) -> None:
        if self.channel is not None:
            self.channel.pause_reading()

    def resume_writing(self) -> None:
        if self.channel is not None:
            self.channel.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.tunnels._links.discard(self)
        if self.channel is not None:
            self.channel.close()
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _ChannelSide(asyncssh.SSHTCPSession):
    """The SSH channel's end of a forward; bytes go to the local socket."""

    def __init__(self, local: _LocalSide) -> None:
        self.local = local

    def data_received(self, data: bytes, datatype) -> None:
        if self.local.transport is not None:
            self.local.transport.write(data)

    def eof_received(self) -> bool:
        if self.local.transport is not None and self.local.transport.can_write_eof():
            self.local.transport.write_eof()
        return True

    def pause_writing(self) -> None:
        if self.local.transport is not None:
            self.local.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.local.transport is not None:
            self.local.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.local.close()


class ReconnectingConnection:
    """One SSH connection to a target, re-established after it drops.

    ``state`` is "connected", "reconnecting", "failed" or "closed". Call
    ``start()`` once, then ``current()`` whenever a connection is needed; it
    waits for a reconnect in progress, or starts one after a failure.
    """

    def __init__(
        self, target: SSHTarget, *, deadline_s: float = RECONNECT_DEADLINE_S
    ) -> None:
        self.target = target
        self.deadline_s = deadline_s
        self.state = "closed"
        self.reconnects = 0
        self._conn: SSHConnection | None = None
        self._ready = asyncio.Event()
        self._error: SSHError | None = None
        self._watcher: asyncio.Task | None = None
        self._tunnels: list[Tunnels] = []

    def __repr__(self) -> str:
        return f"<ReconnectingConnection {self.target.name} {self.state}>"

    async def start(self) -> SSHConnection:
        """Connect now; errors propagate as ``SSHError``."""
        self._install(await connect(self.target))
        return self._conn  # type: ignore[return-value]

    async def current(self) -> SSHConnection:
        """The live connection, after waiting for a reconnect if one is running."""
        if self.state == "closed":
            raise SSHError(f"the connection to {self.target.name} was closed",
                           step="connect", hint="open it again")
        if self.state == "failed":
            self._begin_reconnect()
        await self._ready.wait()
        if self._conn is None:
            raise self._error or SSHError(
                f"lost the connection to {self.target.name}", step="connect"
            )
        return self._conn

    async def forward(self, remote_ports: Iterable[int]) -> Tunnels:
        """Forward ``remote_ports``; the local ports survive reconnects."""
        tunnels = Tunnels(self.current)
        await tunnels.add(remote_ports)
        self._tunnels.append(tunnels)
        return tunnels

    async def close(self) -> None:
        self.state = "closed"
        for tunnels in self._tunnels:
            await tunnels.close()
        if self._watcher is not None:
            self._watcher.cancel()
        if self._conn is not None:
            await self._conn.close()
        self._ready.set()  # wake waiters so they see "closed"

    def _install(self, conn: SSHConnection) -> None:
        self._conn, self._error, self.state = conn, None, "connected"
        self._ready.set()
        self._watcher = asyncio.ensure_future(self._watch(conn))

    async def _watch(self, conn: SSHConnection) -> None:
        await conn.wait_closed()
        if self.state == "closed":
            return
        log.warning("SSH connection to %s dropped; reconnecting (up to %g s)",
                    self.target.name, self.deadline_s)
        self._begin_reconnect()

    def _begin_reconnect(self) -> None:
        self._conn, self.state = None, "reconnecting"
        self._ready.clear()
        self._watcher = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        deadline = time.monotonic() + self.deadline_s
        delay, attempt = 0.2, 0
        while self.state == "reconnecting":
            attempt += 1
            try:
                conn = await connect(self.target)
            except SSHError as exc:
                if exc.step in ("auth", "host-key") or time.monotonic() > deadline:
                    self._give_up(exc, attempt)
                    return
                log.debug("reconnect attempt %d to %s: %s", attempt,
                          self.target.name, exc.message)
                await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, 5.0) * random.uniform(0.8, 1.2)
                continue
            self.reconnects += 1
            log.info("reconnected to %s after %d attempt(s)", self.target.name, attempt)
            self._install(conn)
            return

    def _give_up(self, exc: SSHError, attempts: int) -> None:
        log.warning("giving up reconnecting to %s after %d attempt(s)",
                    self.target.name, attempts)
        self._error, self.state = exc, "failed"
        self._ready.set()


async def forward(conn: SSHConnection, remote_ports: Iterable[int]) -> Tunnels:
    """Forward ``remote_ports`` over one fixed connection (no reconnection)."""

    async def fixed() -> SSHConnection:
        return conn

    tunnels = Tunnels(fixed)
    await tunnels.add(remote_ports)
    return tunnels
