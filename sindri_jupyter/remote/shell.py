"""``sindri connect`` and ``sindri ssh-config``: a shell on the environment."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from sindri_jupyter.errors import UsageError


def _record(name: str):
    from sindri_jupyter.core.state import Store

    return Store.default().get(name)


def connect(name: str) -> int:
    """Open an interactive shell; returns the shell's exit status."""
    record = _record(name)
    kind = (record.endpoint or {}).get("kind", "local")
    if kind == "local":
        cwd = record.handle_data.get("cwd") or "."
        Path(cwd).mkdir(parents=True, exist_ok=True)
        shell = os.environ.get("SHELL", "/bin/sh")
        return subprocess.call([shell], cwd=cwd)
    path = write_ssh_config(name, accept_new=False)
    return subprocess.call(["ssh", "-F", str(path), f"sindri-{name}"])


def write_ssh_config(name: str, *, accept_new: bool) -> Path:
    record = _record(name)
    kind = (record.endpoint or {}).get("kind", "local")
    if kind != "ssh":
        raise UsageError(f"{name} runs on this machine ({record.provider}); it has no SSH",
                         hint=f"`sindri connect {name}` opens a shell in its folder")
    from sindri_jupyter.remote.sshhost import SSHHost

    return SSHHost.for_record(record).write_ssh_config(accept_new=accept_new)
