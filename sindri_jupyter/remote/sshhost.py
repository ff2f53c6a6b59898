"""An environment's host reached over SSH: bootstrap, tunnels, files, config.

``SSHHost`` is the ``Host`` of ``envkernel`` for every provider with an SSH
endpoint (``ssh``, RunPod, Northflank). It keeps one reconnecting SSH
connection; the kernel's five ports are forwarded over it on local ports that
survive a dropped link.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from sindri_jupyter.core import paths
from sindri_jupyter.errors import SSHError
from sindri_jupyter.remote import ssh
from sindri_jupyter.remote.files import Copied, Progress
from sindri_jupyter.remote.tunnels import ReconnectingConnection

if TYPE_CHECKING:
    from sindri_jupyter.core.state import Record


def target_for(record: "Record") -> ssh.SSHTarget:
    """The SSH target of a recorded environment."""
    endpoint = record.endpoint or {}
    extra = endpoint.get("extra") or {}
    folder = paths.env_dir(record.name)
    identity = extra.get("identity_file")
    if identity:
        key = Path(identity).expanduser()
    elif (folder / "id_ed25519").exists():
        key = folder / "id_ed25519"
    else:
        key = None
    return ssh.SSHTarget(
        name=record.name, host=endpoint.get("host", "127.0.0.1"),
        pin_path=folder / "known_hosts", port=endpoint.get("port"),
        user=endpoint.get("user"), key_path=key,
        proxy_command=tuple(extra.get("proxy") or ()),
        use_user_config=bool(extra.get("use_user_config")),
    )


class SSHHost:
    """Run the bootstrap over SSH and reach the kernel through forwards."""

    def __init__(self, target: ssh.SSHTarget, python: str = "python3",
                 cwd: str | None = None, listen_proxy: tuple[str, ...] = ()):
        self.target = target
        self.listen_proxy = listen_proxy
        self.python = python
        self.cwd = cwd
        self._link: ReconnectingConnection | None = None
        self._forwarded: dict[int, int] = {}
        self._proxy = None  # a listening proxy process (Northflank's CLI)

    @classmethod
    def for_record(cls, record: "Record") -> "SSHHost":
        data = record.handle_data
        extra = (record.endpoint or {}).get("extra") or {}
        target = target_for(record)
        listen: tuple[str, ...] = ()
        if extra.get("proxy_mode") == "listen":
            listen = target.proxy_command
            target = dataclasses.replace(target, proxy_command=())
        return cls(target, data.get("python") or "python3", data.get("cwd"), listen)

    async def _ensure_link(self) -> ReconnectingConnection:
        if self._link is None:
            target = await self._through_proxy()
            link = ReconnectingConnection(target)
            await link.start()
            self._link = link
        return self._link

    async def _through_proxy(self) -> ssh.SSHTarget:
        """Start a proxy that listens locally, when the endpoint needs one."""
        if not self.listen_proxy:
            return self.target
        from sindri_jupyter.providers.northflank.cli import SSHProxy

        self._proxy = await SSHProxy.open(self.listen_proxy)
        return dataclasses.replace(self.target, host=self._proxy.host,
                                   port=self._proxy.port, proxy_command=())

    async def _connection(self) -> ssh.SSHConnection:
        return await (await self._ensure_link()).current()

    async def run_python(self, script: str, timeout: float) -> str:
        conn = await self._connection()
        result = await conn.run(f"{shlex.quote(self.python)} -", stdin=script,
                                timeout=timeout, check=False)
        if result.exit_status == 127:
            raise SSHError(f"no {self.python} on {self.target.name}", step="command",
                           hint="install Python 3 on the host, or set python: in the "
                           "provider's section of sindri.yaml")
        if not result.ok:
            raise SSHError(f"the kernel bootstrap failed on {self.target.name}: "
                           f"{result.stderr.strip()[-1500:]}", step="command",
                           hint="check that the host has Python 3 with venv or ipykernel")
        return result.stdout

    async def reach(self, ports: dict[str, int]) -> dict[str, int]:
        link = await self._ensure_link()
        wanted = [p for p in ports.values() if p not in self._forwarded]
        if wanted:
            tunnels = await link.forward(wanted)
            self._forwarded.update(tunnels.local_ports)
        return {name: self._forwarded[port] for name, port in ports.items()}

    @property
    def reconnects(self) -> int:
        return self._link.reconnects if self._link else 0

    async def aclose(self) -> None:
        if self._link is not None:
            await self._link.close()
            self._link = None
            self._forwarded.clear()
        if self._proxy is not None:
            await self._proxy.close()
            self._proxy = None

    async def push(self, path: str, remote: str | None, progress: Progress) -> Copied:
        local = Path(path)
        target = remote or (f"{self.cwd}/{local.name}" if self.cwd else local.name)
        try:
            report = await ssh.push(await self._connection(), local, target,
                                    progress=_bytes_progress(progress))
        finally:
            await self.aclose()
        return Copied(len(report.copied), len(report.skipped))

    async def pull(self, remote: str, path: str | None, progress: Progress) -> Copied:
        if self.cwd and not remote.startswith(("/", "~")):
            remote = f"{self.cwd}/{remote}"
        local = Path(path) if path else Path(Path(remote).name)
        try:
            report = await ssh.pull(await self._connection(), remote, local,
                                    progress=_bytes_progress(progress))
        finally:
            await self.aclose()
        return Copied(len(report.copied), len(report.skipped))

    def write_ssh_config(self, *, accept_new: bool) -> Path:
        """Write ``Host sindri-NAME`` and include it from ``~/.ssh/config``."""
        if accept_new:
            ssh.forget_pin(self.target)
        entry = ssh_config_entry(self.target)
        folder = paths.home() / "ssh"
        folder.mkdir(mode=0o700, exist_ok=True)
        path = folder / f"{self.target.name}.conf"
        path.write_text(entry)
        os.chmod(path, 0o600)
        _include_from_user_config(folder)
        return path


def ssh_config_entry(target: ssh.SSHTarget) -> str:
    lines = [f"Host sindri-{target.name}", f"  HostName {target.host}"]
    if target.port:
        lines.append(f"  Port {target.port}")
    if target.user:
        lines.append(f"  User {target.user}")
    if target.key_path:
        lines += [f"  IdentityFile {target.key_path}", "  IdentitiesOnly yes"]
    if target.proxy_command:
        lines.append("  ProxyCommand " + " ".join(shlex.quote(a) for a in
                                                   target.proxy_command))
    if target.pin_path.exists():
        lines += [f"  HostKeyAlias {target.host_key_alias}",
                  f"  UserKnownHostsFile {target.pin_path}",
                  "  StrictHostKeyChecking yes"]
    else:
        lines.append("  StrictHostKeyChecking accept-new")
    lines += ["  ServerAliveInterval 15", ""]
    return "\n".join(lines)


def _include_from_user_config(folder: Path) -> None:
    """Add one ``Include`` line to ~/.ssh/config, once, at the top."""
    user_config = Path.home() / ".ssh" / "config"
    line = f"Include {folder}/*.conf"
    current = user_config.read_text() if user_config.exists() else ""
    if line in current:
        return
    user_config.parent.mkdir(mode=0o700, exist_ok=True)
    user_config.write_text(f"# added by sindri-jupyter\n{line}\n\n{current}")
    os.chmod(user_config, 0o600)


def _bytes_progress(progress: Progress):
    def report(rel: str, done: int, total: int) -> None:
        progress(f"  {rel}: {done}/{total} bytes")
    return report

