"""Pick the host of an environment from its record: this machine or SSH.

This is the seam between the engine and the remote layer: the engine hands a
state-store record over and gets an ``EnvironmentKernel`` whose host knows how
to run the bootstrap and reach the kernel's ports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sindri_jupyter.core import paths
from sindri_jupyter.errors import ConfigError, KernelError
from sindri_jupyter.remote.envkernel import EnvironmentKernel, LocalHost

if TYPE_CHECKING:
    from sindri_jupyter.config.models import SindriConfig
    from sindri_jupyter.core.state import Record


def public_key(name: str) -> str:
    """The environment's SSH public key, generating the pair on first use."""
    from sindri_jupyter.remote.keys import ensure_key_pair

    return ensure_key_pair(paths.env_dir(name)).public_key


def kernel_env(record: "Record", config: "SindriConfig | None") -> dict[str, str]:
    """The kernel's environment variables, read from the config, never stored."""
    if config is None and record.config_path:
        from sindri_jupyter.config import load

        try:
            config = load(record.config_path)
        except ConfigError:
            config = None
    return dict(config.deployment.env) if config else {}


def environment_kernel(record: "Record", config: "SindriConfig | None", *,
                       with_env: bool = True) -> EnvironmentKernel:
    """The environment's kernel. ``with_env=False`` skips reading the config for
    the kernel's variables: only a start needs them, not a probe or a stop."""
    data = record.handle_data
    endpoint = record.endpoint or {}
    kind = endpoint.get("kind", "local")
    if kind == "local":
        host = LocalHost(data.get("python"))
        workdir = data.get("host_workdir") or str(paths.env_dir(record.name) / "kernel")
    elif kind == "ssh":
        from sindri_jupyter.remote.sshhost import SSHHost

        host = SSHHost.for_record(record)
        workdir = data.get("host_workdir") or f"~/.sindri/envs/{record.name}"
    else:
        raise KernelError(f"unknown endpoint kind {kind!r} for {record.name!r}",
                          hint="this environment was recorded by a newer sindri")
    return EnvironmentKernel(
        record.name, host, paths.env_dir(record.name), workdir,
        python=data.get("python") if kind == "ssh" else None,
        cwd=data.get("cwd"), env=kernel_env(record, config) if with_env else {},
        limits=watchdog_limits(record),
    )


# On a RunPod pod, runpodctl carries a pod-scoped key: the watchdog can stop
# the pod itself, so a closed laptop does not leave it billing.
_SELF_STOP = {"runpod": ["sh", "-c", 'command -v runpodctl >/dev/null && '
                         'runpodctl stop pod "$RUNPOD_POD_ID"']}


def watchdog_limits(record: "Record") -> dict:
    """The on-host watchdog's settings: idle minutes and seconds left to run."""
    import time

    from sindri_jupyter.core.limits import seconds_left
    from sindri_jupyter.core.waiting import env_seconds

    limits = record.handle_data.get("limits") or {}
    out: dict = {"interval_s": env_seconds("SINDRI_WATCHDOG_INTERVAL", 30.0)}
    if limits.get("idle_stop_minutes"):
        out["idle_minutes"] = limits["idle_stop_minutes"]
    left = seconds_left(record, time.time())
    if left is not None:
        out["stop_after_s"] = left
    if record.provider in _SELF_STOP:
        out["self_stop"] = _SELF_STOP[record.provider]
    return out
