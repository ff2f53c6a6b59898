"""The per-environment SSH key pair.

Each environment gets its own ed25519 key in its folder under ``SINDRI_HOME``:
``id_ed25519`` (mode 0600) and ``id_ed25519.pub``, in a folder of mode 0700.
The private key stays in that file: nothing here holds it in memory longer than
it takes to write it, and no repr, log line or exception shows it.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from sindri_jupyter.errors import RemoteError

log = logging.getLogger(__name__)

PRIVATE_NAME = "id_ed25519"
PUBLIC_NAME = "id_ed25519.pub"


@dataclass(frozen=True)
class KeyPair:
    """Where an environment's key lives, and its public half."""

    private_path: Path
    public_key: str  # one OpenSSH line: "ssh-ed25519 AAAA... comment"
    fingerprint: str  # SHA256:..., for logs and messages

    @property
    def public_path(self) -> Path:
        return self.private_path.with_name(PUBLIC_NAME)


def ensure_key_pair(directory: Path, *, comment: str = "sindri") -> KeyPair:
    """Load the key pair in ``directory``, generating it on first use."""
    directory = Path(directory).expanduser()
    _make_private_dir(directory)
    private_path = directory / PRIVATE_NAME
    if private_path.exists():
        return load_key_pair(directory)
    return _generate(private_path, comment)


def load_key_pair(directory: Path) -> KeyPair:
    """Load an existing key pair; fix a too-open private key file to 0600."""
    private_path = Path(directory).expanduser() / PRIVATE_NAME
    _tighten(private_path)
    try:
        key = asyncssh.read_private_key(str(private_path))
    except (OSError, asyncssh.KeyImportError) as exc:
        raise RemoteError(
            f"cannot read the SSH key {private_path}: {exc}",
            hint=f"delete {private_path} and {private_path.with_name(PUBLIC_NAME)} "
            "to generate a new key, then authorize the new public key on the host",
        ) from exc
    return _describe(private_path, key)


def _generate(private_path: Path, comment: str) -> KeyPair:
    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
    data = key.export_private_key()
    # Write to a temporary name created 0600, then rename: the key is never
    # readable by others, and a crash never leaves half a key behind.
    tmp = private_path.with_name(PRIVATE_NAME + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, private_path)
    pair = _describe(private_path, key)
    pair.public_path.write_text(pair.public_key + "\n")
    log.info("generated SSH key %s (%s)", private_path, pair.fingerprint)
    return pair


def _describe(private_path: Path, key: asyncssh.SSHKey) -> KeyPair:
    public = key.export_public_key("openssh").decode().strip()
    return KeyPair(private_path, public, key.get_fingerprint("sha256"))


def _make_private_dir(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(directory.stat().st_mode) != 0o700:
        directory.chmod(0o700)


def _tighten(private_path: Path) -> None:
    try:
        mode = stat.S_IMODE(private_path.stat().st_mode)
    except FileNotFoundError:
        raise RemoteError(
            f"no SSH key at {private_path}",
            hint="deploy the environment again to create its key",
        ) from None
    if mode & 0o077:
        log.warning("SSH key %s had mode %o; setting 0600", private_path, mode)
        private_path.chmod(0o600)
