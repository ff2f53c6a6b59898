"""A real OpenSSH server on 127.0.0.1 for tests.

``start_sshd(workdir)`` writes its own ``sshd_config``, ed25519 host key and
authorized-keys file under ``workdir``, starts ``/usr/sbin/sshd -D`` as the
current user (root in CI, any user elsewhere) on a free port, and waits until
it answers with an SSH banner. ``SshServer.drop_connections()`` kills only the
per-connection sshd processes, which is what a dropped Wi-Fi looks like to the
client, while the listener keeps accepting new connections.

Sessions get ``HOME`` set to a private folder (``SshServer.home``) and SFTP
starts there, so tests never write into the real home of the user running them
and concurrent runs do not share remote state. The working directory of a
remote command is still the account's real home: use ``~`` or absolute paths.

Run as non-root, sshd skips privilege separation and can only log in the user
it runs as; that user's account must not be locked (``UsePAM no`` makes sshd
check the password field itself), or every login fails at "auth".
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

SSHD = Path("/usr/sbin/sshd")
START_DEADLINE_S = 15.0
# Debian's sshd insists on this directory when it runs as root (privilege separation).
PRIVSEP_DIR = Path("/run/sshd")

CONFIG_TEMPLATE = """\
ListenAddress 127.0.0.1
Port {port}
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {authorized_keys}
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin yes
AllowTcpForwarding yes
AllowStreamLocalForwarding no
X11Forwarding no
PrintMotd no
MaxStartups 64
MaxSessions 64
LogLevel VERBOSE
SetEnv HOME={home}
Subsystem sftp internal-sftp -d {home}
"""


class SshdMissing(Exception):
    """The OpenSSH server binary is not installed."""


@dataclass
class SshServer:
    """A running sshd: where it listens and how to control it."""

    host: str
    port: int
    user: str
    workdir: Path
    process: subprocess.Popen = field(repr=False)

    @property
    def home(self) -> Path:
        """The sessions' ``HOME`` and the SFTP start folder."""
        return self.workdir / "home"

    @property
    def authorized_keys(self) -> Path:
        return self.workdir / "authorized_keys"

    @property
    def log_path(self) -> Path:
        return self.workdir / "sshd.log"

    def authorize(self, public_key: str) -> None:
        """Allow logins with this OpenSSH public key line (idempotent)."""
        line = public_key.strip()
        existing = self.authorized_keys.read_text().splitlines()
        if line not in existing:
            with self.authorized_keys.open("a") as f:
                f.write(line + "\n")

    def host_public_key(self) -> str:
        """The server's host key in OpenSSH format, as a client would see it."""
        return (self.workdir / "host_ed25519.pub").read_text().strip()

    def connection_pids(self) -> list[int]:
        """PIDs of the sshd processes serving established connections."""
        return [pid for pid in _descendants(self.process.pid) if _is_sshd(pid)]

    def drop_connections(self) -> int:
        """Kill every per-connection sshd process, keep the listener; return count."""
        pids = self.connection_pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # it ended on its own in the meantime
        return len(pids)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text().splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the listener and every connection it still serves."""
        self.drop_connections()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_sshd(workdir: Path, *, attempts: int = 3) -> SshServer:
    """Start sshd under ``workdir``; retry on the rare lost race for a free port."""
    if not SSHD.exists():
        raise SshdMissing(
            f"{SSHD} is not installed; the SSH tests need a real OpenSSH server. "
            "Run the test command from the README, which installs Debian's "
            "openssh-server when it is missing."
        )
    workdir.mkdir(parents=True, exist_ok=True)
    _write_host_key(workdir)
    (workdir / "authorized_keys").touch()
    (workdir / "home").mkdir(exist_ok=True)
    if os.geteuid() == 0:
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    failure = ""
    for _ in range(attempts):
        server = _launch(workdir, _free_port())
        failure = _wait_until_ready(server)
        if not failure:
            return server
        server.stop()
    raise OSError(f"sshd did not start: {failure}")


def _write_host_key(workdir: Path) -> None:
    key_path = workdir / "host_ed25519"
    if key_path.exists():
        return
    key = asyncssh.generate_private_key("ssh-ed25519", comment="sindri-test-host")
    key.write_private_key(str(key_path))
    key_path.chmod(0o600)
    key.write_public_key(str(key_path) + ".pub")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(workdir: Path, port: int) -> SshServer:
    config = workdir / "sshd_config"
    config.write_text(
        CONFIG_TEMPLATE.format(
            port=port,
            host_key=workdir / "host_ed25519",
            pid_file=workdir / "sshd.pid",
            authorized_keys=workdir / "authorized_keys",
            home=(workdir / "home").resolve(),
        )
    )
    log = workdir / "sshd.log"
    # sshd re-executes itself, so every path it is given must be absolute.
    cmd = [str(SSHD), "-D", "-f", str(config.resolve()), "-E", str(log.resolve())]
    process = subprocess.Popen(
        _die_with_parent(cmd), stdin=subprocess.DEVNULL, start_new_session=True
    )
    return SshServer("127.0.0.1", port, getpass.getuser(), workdir, process)


def _die_with_parent(cmd: list[str]) -> list[str]:
    """Make sshd get SIGTERM when the test process dies, even by SIGKILL.

    Without it a killed pytest leaves sshd listening forever. util-linux's
    setpriv sets the parent-death signal and execs sshd; where it is missing,
    only the fixture's teardown stops sshd.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return cmd
    return [setpriv, "--pdeathsig", "TERM", "--", *cmd]


def _wait_until_ready(server: SshServer) -> str:
    """Return "" once sshd sends its banner, else why it did not."""
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return f"exited with {server.process.returncode}: {server.log_tail()}"
        try:
            with socket.create_connection((server.host, server.port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-"):
                    return ""
        except OSError:
            pass  # not listening yet
        time.sleep(0.05)
    return f"no SSH banner on port {server.port} after {START_DEADLINE_S} s"


def _children() -> dict[int, list[int]]:
    """Map each PID to its child PIDs, read from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # the process ended while we looked
        # The command name is in parentheses and may contain spaces.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _descendants(pid: int) -> list[int]:
    tree = _children()
    found: list[int] = []
    todo = list(tree.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(tree.get(child, []))
    return found


def _is_sshd(pid: int) -> bool:
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return False
    return comm.startswith("sshd")
