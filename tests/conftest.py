"""Shared fixtures: a private SINDRI_HOME per test, no kernel left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["tests.conftest_sshd"]


@pytest.fixture(autouse=True)
def sindri_home(tmp_path, monkeypatch):
    home = tmp_path / "sindri-home"
    monkeypatch.setenv("SINDRI_HOME", str(home))
    # ssh-config writes ~/.ssh/config: keep the real one out of reach.
    user_home = tmp_path / "user-home"
    user_home.mkdir()
    monkeypatch.setenv("HOME", str(user_home))
    for name in ("RUNPOD_API_KEY", "NORTHFLANK_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    yield home
    _kill_kernels_under(home)


def _kill_kernels_under(home: Path) -> None:
    """A test that failed half-way must not leave its kernels running."""
    for pidfile in home.glob("envs/*/kernel/kernel.pid"):
        try:
            os.killpg(int(pidfile.read_text()), signal.SIGKILL)
        except (ValueError, ProcessLookupError, PermissionError):
            pass


def sindri(*args: str, env: dict | None = None, input: str | None = None,
           cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the CLI as a subprocess, the way a user does."""
    return subprocess.run(
        [sys.executable, "-m", "sindri_jupyter", *args], capture_output=True, text=True,
        env={**os.environ, **(env or {})}, input=input, cwd=cwd or ROOT, timeout=timeout,
    )


def alive(pid: int) -> bool:
    """Is this process running (and not a zombie)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def ipython_shell():
    """The one IPython test shell of this process (start_ipython gives it once)."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.testing.globalipapp import start_ipython

    return start_ipython() or InteractiveShell.instance()
