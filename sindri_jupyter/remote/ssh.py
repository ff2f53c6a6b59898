"""The SSH transport: one asyncssh connection per environment.

``connect(target)`` opens a connection that never prompts: our own key (or, for
the plain ``ssh`` provider, the user's ``~/.ssh/config`` and agent), no password
or keyboard-interactive auth, keepalives on, and a host key pinned per
environment. The pin is a known_hosts file in the environment's folder keyed by
an alias (``sindri-NAME``), not by address and port, because clouds hand the
same address to other machines. First contact writes the pin; a different key
later is refused.

Every asyncssh and socket error is translated here into ``SSHError`` whose
``step`` is ``connect``, ``auth``, ``host-key`` or ``command``, with a hint.
File copies over SFTP (``push``/``pull``) live here too; local port forwards
and reconnection are in ``tunnels``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import asyncssh
from typing_extensions import Self

from sindri_jupyter.errors import SSHError, UsageError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 20.0
KEEPALIVE_INTERVAL_S = 15.0
KEEPALIVE_COUNT_MAX = 4
COMMAND_TIMEOUT_S = 120.0
# asyncssh does AES-GCM in OpenSSL but ChaCha20-Poly1305 partly in Python, its
# default first choice: on loopback a tunnelled 64-byte round trip took about
# 150-180 us with AES-GCM against 265-275 us with ChaCha20 (see
# bench/ssh_tunnel.py). ChaCha20 and CTR stay as fallbacks for other servers.
CIPHERS = [
    "aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com", "aes256-ctr", "aes192-ctr", "aes128-ctr",
]


@dataclass(frozen=True)
class SSHTarget:
    """Where and how to reach one environment over SSH.

    ``port`` and ``user`` may be None only with ``use_user_config``, letting
    ``~/.ssh/config`` decide. ``proxy_command`` is an argv whose stdin/stdout
    carry the SSH stream (Northflank's tunnel); it must not contain secrets.
    """

    name: str
    host: str
    pin_path: Path
    port: int | None = 22
    user: str | None = "root"
    key_path: Path | None = None
    proxy_command: tuple[str, ...] = ()
    use_user_config: bool = False
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    keepalive_interval_s: float = KEEPALIVE_INTERVAL_S

    @property
    def host_key_alias(self) -> str:
        return f"sindri-{self.name}"

    @property
    def address(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{user}{self.host}{port}"


@dataclass(frozen=True)
class CommandResult:
    """What a remote command printed and how it ended."""

    command: str
    stdout: str
    stderr: str
    exit_status: int | None  # None: killed by a signal or the link dropped

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


# ---------------------------------------------------------------- host-key pin


def read_pin(target: SSHTarget) -> list[asyncssh.SSHKey]:
    """The host keys pinned for this environment; [] before first contact."""
    try:
        lines = target.pin_path.read_text().splitlines()
    except FileNotFoundError:
        return []
    keys = []
    for line in lines:
        parts = line.split()
        if len(parts) < 3 or line.startswith("#"):
            continue
        try:
            keys.append(asyncssh.import_public_key(" ".join(parts[1:3])))
        except asyncssh.KeyImportError as exc:
            raise SSHError(
                f"the host-key pin {target.pin_path} is unreadable: {exc}",
                step="host-key",
                hint=f"delete {target.pin_path}; the next connection pins the "
                "host's current key",
            ) from exc
    return keys


def write_pin(target: SSHTarget, key: asyncssh.SSHKey) -> None:
    """Pin ``key`` in known_hosts format, usable with ``HostKeyAlias``."""
    line = f"{target.host_key_alias} {key.export_public_key().decode().strip()}\n"
    target.pin_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = target.pin_path.with_name(target.pin_path.name + ".tmp")
    tmp.write_text(line)
    os.replace(tmp, target.pin_path)
    log.info("pinned host key %s for %s in %s",
             key.get_fingerprint(), target.name, target.pin_path)


def forget_pin(target: SSHTarget) -> bool:
    """Drop the pin so the next connection accepts the host's current key."""
    try:
        target.pin_path.unlink()
    except FileNotFoundError:
        return False
    return True


class _PinningClient(asyncssh.SSHClient):
    """Sees the host key asyncssh could not match against the pin."""

    def __init__(self, accept_unknown: bool) -> None:
        self.accept_unknown = accept_unknown
        self.offered: asyncssh.SSHKey | None = None

    def validate_host_public_key(self, host, addr, port, key) -> bool:
        self.offered = key
        return self.accept_unknown


# ------------------------------------------------------------------ connecting


class SSHConnection:
    """An open SSH connection to one environment."""

    def __init__(self, target: SSHTarget, conn: asyncssh.SSHClientConnection):
        self.target = target
        self.raw = conn

    def __repr__(self) -> str:
        return f"<SSHConnection {self.target.name} {self.target.address}>"

    @property
    def is_closed(self) -> bool:
        return self.raw.is_closed()

    async def wait_closed(self) -> None:
        await self.raw.wait_closed()

    async def close(self) -> None:
        self.raw.close()
        await self.raw.wait_closed()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def run(
        self,
        command: str,
        *,
        stdin: str | None = None,
        timeout: float = COMMAND_TIMEOUT_S,
        check: bool = True,
    ) -> CommandResult:
        """Run ``command`` with ``stdin`` (never put secrets in ``command``)."""
        try:
            done = await self.raw.run(
                command, input=stdin, check=False, timeout=timeout
            )
        except asyncssh.TimeoutError as exc:
            raise SSHError(
                f"`{_short(command)}` on {self.target.name} did not finish within "
                f"{timeout:g} s",
                step="command",
                hint="the host may be overloaded; retry, or raise the timeout",
            ) from exc
        except (asyncssh.Error, OSError) as exc:
            raise _link_lost(self.target, command, exc) from exc
        result = CommandResult(
            command, _text(done.stdout), _text(done.stderr), done.exit_status
        )
        if check and not result.ok:
            raise _command_failed(self.target, result)
        return result


async def connect(target: SSHTarget) -> SSHConnection:
    """Open a connection to ``target``; raise ``SSHError`` naming the failed step."""
    pinned = read_pin(target)
    client = _PinningClient(accept_unknown=not pinned)
    try:
        conn = await asyncio.wait_for(
            asyncssh.connect(
                target.host,
                **_connect_options(target, pinned),
                client_factory=lambda: client,
            ),
            # asyncssh applies connect_timeout per phase; this caps the total.
            timeout=target.connect_timeout_s * 2,
        )
    except (asyncssh.Error, OSError, asyncio.TimeoutError) as exc:
        raise _connect_failed(target, exc, client.offered, pinned) from exc
    if not pinned and client.offered is not None:
        write_pin(target, client.offered)
    log.debug("connected to %s (%s)", target.name, target.address)
    return SSHConnection(target, conn)


def _connect_options(target: SSHTarget, pinned: list) -> dict:
    options: dict = {
        "known_hosts": (pinned, [], []),
        "password_auth": False,
        "kbdint_auth": False,
        "keepalive_interval": target.keepalive_interval_s,
        "keepalive_count_max": KEEPALIVE_COUNT_MAX,
        "connect_timeout": target.connect_timeout_s,
        "login_timeout": target.connect_timeout_s,
        "encryption_algs": CIPHERS,
    }
    if target.port is not None:
        options["port"] = target.port
    if target.user is not None:
        options["username"] = target.user
    if target.proxy_command:
        options["proxy_command"] = list(target.proxy_command)
    if target.use_user_config:
        # asyncssh reads ~/.ssh/config, default identities and SSH_AUTH_SOCK.
        options["ignore_encrypted"] = True
        if target.key_path is not None:
            options["client_keys"] = [str(Path(target.key_path).expanduser())]
    else:
        options.update(config=None, agent_path=None)
        options["client_keys"] = [str(target.key_path)] if target.key_path else None
    return options


# ------------------------------------------------------------- file transfer

# progress(path relative to the copied root, bytes done, bytes to copy in all)
Progress = Callable[[str, int, int], None]


@dataclass
class TransferReport:
    """What a push or pull copied and what it found unchanged."""

    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    bytes_copied: int = 0


@dataclass(frozen=True)
class _Copy:
    rel: str
    src: str
    dst: str
    size: int


async def push(
    conn: SSHConnection, local: Path, remote: str, *, progress: Progress | None = None
) -> TransferReport:
    """Copy a local file or folder to ``remote``, skipping unchanged files.

    A folder is copied *as* ``remote`` (``push(c, Path("data"), "work/data")``);
    a file lands at ``remote``, or inside it when it is an existing folder.
    A file counts as unchanged when its size and mtime (whole seconds) match.
    """
    local = Path(local).expanduser()
    if not local.exists():
        raise UsageError(f"push: no such local file or folder {local}",
                         hint="check the path; it is relative to the current folder")
    remote = _remote_path(remote)
    try:
        async with conn.raw.start_sftp_client() as sftp:
            if local.is_dir():
                plan = await _plan_push_tree(sftp, local, remote)
            else:
                if await sftp.isdir(remote):
                    remote = str(PurePosixPath(remote) / local.name)
                plan = [_Copy(local.name, str(local), remote, local.stat().st_size)]
            todo, report = await _split_unchanged(plan, _local_stat, _remote_stat(sftp))
            await _copy_all(sftp.put, todo, report, progress)
    except asyncssh.SFTPError as exc:
        raise _sftp_failed(conn.target, "push", str(local), remote, exc) from exc
    return report


async def pull(
    conn: SSHConnection, remote: str, local: Path, *, progress: Progress | None = None
) -> TransferReport:
    """Copy a remote file or folder to ``local``; the mirror image of ``push``."""
    local = Path(local).expanduser()
    remote = _remote_path(remote)
    try:
        async with conn.raw.start_sftp_client() as sftp:
            attrs = await sftp.stat(remote)
            if stat.S_ISDIR(attrs.permissions or 0):
                plan = await _plan_pull_tree(sftp, remote, local)
            else:
                if local.is_dir():
                    local = local / PurePosixPath(remote).name
                plan = [_Copy(PurePosixPath(remote).name, remote, str(local),
                              attrs.size or 0)]
            todo, report = await _split_unchanged(plan, _remote_stat(sftp), _local_stat)
            await _copy_all(sftp.get, todo, report, progress)
    except asyncssh.SFTPError as exc:
        raise _sftp_failed(conn.target, "pull", remote, str(local), exc) from exc
    return report


async def _plan_push_tree(sftp, root: Path, remote: str) -> list[_Copy]:
    plan = []
    for folder, _dirs, files in os.walk(root):
        rel_dir = Path(folder).relative_to(root).as_posix()
        dst_dir = str(PurePosixPath(remote) / rel_dir)
        await sftp.makedirs(dst_dir, exist_ok=True)
        for name in sorted(files):
            src = Path(folder) / name
            rel = str(PurePosixPath(rel_dir) / name)
            plan.append(_Copy(rel, str(src), f"{dst_dir}/{name}", src.stat().st_size))
    return plan


async def _plan_pull_tree(sftp, remote: str, root: Path) -> list[_Copy]:
    plan = []
    todo = [""]
    while todo:
        rel_dir = todo.pop()
        (root / rel_dir).mkdir(parents=True, exist_ok=True)
        for entry in await sftp.readdir(str(PurePosixPath(remote) / rel_dir)):
            if entry.filename in (".", ".."):
                continue
            rel = str(PurePosixPath(rel_dir) / entry.filename)
            mode = entry.attrs.permissions or 0
            if stat.S_ISDIR(mode):
                todo.append(rel)
            elif stat.S_ISREG(mode):
                src = str(PurePosixPath(remote) / rel)
                plan.append(_Copy(rel, src, str(root / rel), entry.attrs.size or 0))
            else:
                log.debug("pull: skipping %s (not a regular file)", rel)
    return plan


async def _local_stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_size, int(st.st_mtime)


def _remote_stat(sftp):
    async def look(path: str) -> tuple[int, int] | None:
        try:
            attrs = await sftp.stat(path)
        except asyncssh.SFTPNoSuchFile:
            return None
        return attrs.size or 0, int(attrs.mtime or 0)

    return look


async def _split_unchanged(plan: list[_Copy], src_stat, dst_stat):
    """Keep the copies whose destination differs in size or mtime."""
    report = TransferReport()
    todo = []
    for item in plan:
        after = await dst_stat(item.dst)
        if after is not None and after == await src_stat(item.src):
            report.skipped.append(item.rel)
        else:
            todo.append(item)
    return todo, report


async def _copy_all(copy, todo: list[_Copy], report, progress) -> None:
    total = sum(item.size for item in todo)
    for item in todo:
        done_before = report.bytes_copied

        def on_bytes(_src, _dst, done, _size, rel=item.rel, base=done_before):
            if progress is not None:
                progress(rel, base + done, total)

        # preserve=True copies the mtime, which is what makes a repeat skip it.
        await copy(item.src, item.dst, preserve=True, progress_handler=on_bytes)
        report.copied.append(item.rel)
        report.bytes_copied += item.size
    log.info("copied %d files (%d bytes), %d unchanged",
             len(report.copied), report.bytes_copied, len(report.skipped))


def _remote_path(path: str) -> str:
    # SFTP paths are relative to the login folder and know nothing of "~".
    if path in ("~", "~/", ""):
        return "."
    return path.removeprefix("~/")


# ---------------------------------------------------------- error translation


def _connect_failed(
    target: SSHTarget,
    exc: BaseException,
    offered: asyncssh.SSHKey | None,
    pinned: list,
) -> SSHError:
    where = f"{target.name} ({target.address})"
    if isinstance(exc, asyncssh.PermissionDenied):
        return _auth_refused(target, where)
    if isinstance(exc, asyncssh.HostKeyNotVerifiable) or (
        pinned and isinstance(exc, asyncssh.KeyExchangeFailed)
    ):
        return _host_key_changed(target, where, offered, pinned)
    if isinstance(exc, ConnectionRefusedError):
        return SSHError(
            f"{where} refused the TCP connection",
            step="connect",
            hint=f"check that the machine is running (`sindri status {target.name}`) "
            f"and that sshd listens on port {target.port}",
        )
    if isinstance(exc, socket.gaierror):
        return SSHError(f"cannot resolve host {target.host!r}: {exc}", step="connect",
                        hint="check the host name in sindri.yaml or ~/.ssh/config")
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return SSHError(
            f"no SSH answer from {where} within {target.connect_timeout_s:g} s",
            step="connect",
            hint="the machine may still be booting, or a firewall drops the port; "
            f"retry, or check `sindri status {target.name}`",
        )
    via = f" via `{' '.join(target.proxy_command)}`" if target.proxy_command else ""
    return SSHError(
        f"connection to {where}{via} failed: {exc}",
        step="connect",
        hint="check that the machine is running and reachable; "
        + ("check that the proxy command works on its own" if via else "then retry"),
    )


def _auth_refused(target: SSHTarget, where: str) -> SSHError:
    if target.key_path is not None:
        pub = f"{target.key_path}.pub"
        hint = (f"append the public key in {pub} to ~{target.user or ''}/.ssh/"
                "authorized_keys on the host, and check the user name")
    else:
        hint = "load a key into ssh-agent or set identity_file under providers.ssh"
    return SSHError(f"{where} refused our key", step="auth", hint=hint)


def _host_key_changed(
    target: SSHTarget, where: str, offered: asyncssh.SSHKey | None, pinned: list
) -> SSHError:
    now = offered.get_fingerprint() if offered is not None else "of another type"
    before = ", ".join(key.get_fingerprint() for key in pinned)
    return SSHError(
        f"the host key of {where} changed: pinned {before}, offered {now}",
        step="host-key",
        hint="if the machine was rebuilt and you trust it, run `sindri ssh-config "
        f"{target.name} --accept-new-host-key` or delete {target.pin_path}; the "
        "next connection then pins the new key. Otherwise do not connect",
    )


def _link_lost(target: SSHTarget, command: str, exc: BaseException) -> SSHError:
    return SSHError(
        f"`{_short(command)}` on {target.name}: the connection failed: {exc}",
        step="command",
        hint="the connection dropped; retry, and check the network",
    )


def _command_failed(target: SSHTarget, result: CommandResult) -> SSHError:
    how = (f"exited with status {result.exit_status}"
           if result.exit_status is not None else "was killed or lost its connection")
    tail = result.stderr.strip().splitlines()[-5:]
    detail = ("; stderr: " + " | ".join(tail)) if tail else ""
    return SSHError(
        f"`{_short(result.command)}` on {target.name} {how}{detail}",
        step="command",
        hint=f"run it by hand with `sindri connect {target.name}` to see why",
    )


def _sftp_failed(
    target: SSHTarget, verb: str, src: str, dst: str, exc: asyncssh.SFTPError
) -> SSHError:
    return SSHError(
        f"{verb} {src} -> {dst} on {target.name} failed: {exc.reason}",
        step="command",
        hint="check that the remote path exists and is writable by the SSH user",
    )


def _short(command: str, limit: int = 80) -> str:
    command = " ".join(command.split())
    return command if len(command) <= limit else command[: limit - 3] + "..."


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data
