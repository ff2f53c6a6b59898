"""``sindri doctor`` and ``sindri gpus``: checks and catalogs across providers."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
from typing import Any

from sindri_jupyter.core import paths
from sindri_jupyter.core.types import Check
from sindri_jupyter.errors import ProviderError

log = logging.getLogger(__name__)


async def run(provider: str | None, *, fix: bool) -> list[Check]:
    checks = [_python(), _ipykernel(), _state_dir(), _ssh_key(fix),
              *await _stray_kernels(fix)]
    if provider:
        from sindri_jupyter.core.engine import Engine

        engine = Engine()
        try:
            checks.extend(await engine.provider(provider).check())
        finally:
            await engine.aclose()
    return checks


def _python() -> Check:
    ok = sys.version_info >= (3, 10)
    return Check("python", ok, sys.version.split()[0],
                 None if ok else "install Python 3.10 or newer")


def _ipykernel() -> Check:
    ok = importlib.util.find_spec("ipykernel") is not None
    return Check("ipykernel", ok, "importable" if ok else "missing",
                 None if ok else f"{sys.executable} -m pip install ipykernel")


def _state_dir() -> Check:
    try:
        home = paths.home()
        probe = home / ".doctor-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return Check("state dir", False, str(exc),
                     "set SINDRI_HOME to a writable folder")
    return Check("state dir", True, f"{home} is writable")


def key_path():
    return paths.home() / "keys" / "id_ed25519"


def _ssh_key(fix: bool) -> Check:
    """A default key is optional: every environment gets its own key anyway."""
    path = key_path()
    if not path.exists() and fix:
        from sindri_jupyter.remote.keys import ensure_key_pair

        ensure_key_pair(path.parent)
        return Check("ssh key", True, f"created {path} (mode 600)")
    if not path.exists():
        return Check("ssh key", True, f"none at {path}; not needed (each environment "
                     "gets its own key); `sindri doctor --fix` makes a default one")
    mode = path.stat().st_mode & 0o777
    if mode != 0o600:
        return Check("ssh key", False, f"{path} has mode {mode:o}", f"chmod 600 {path}")
    return Check("ssh key", True, f"{path} (mode 600)")


async def _stray_kernels(fix: bool) -> list[Check]:
    """Kernels whose environment is no longer recorded (left by a crash)."""
    from sindri_jupyter.core.state import Store

    root = paths.home() / "envs"
    if not root.exists():
        return []
    known = {r.name for r in Store.default().all()}
    stray = [p for p in sorted(root.iterdir())
             if (p / "kernel.json").exists() and p.name not in known]
    if not stray:
        return [Check("stray kernels", True, "none")]
    if fix:
        for folder in stray:
            await _stop_local_kernel(folder)
        return [Check("stray kernels", True, "stopped and removed: "
                      + ", ".join(p.name for p in stray))]
    return [Check("stray kernels", False, "kernels of forgotten environments: "
                  + ", ".join(p.name for p in stray),
                  "sindri doctor --fix stops the ones on this machine and removes "
                  "their folders")]


async def _stop_local_kernel(folder) -> None:
    """Stop a kernel this machine runs for ``folder``, then remove the folder."""
    from sindri_jupyter.remote import bootstrap
    from sindri_jupyter.remote.envkernel import LocalHost

    if (folder / "kernel").is_dir():
        await LocalHost().run_python(bootstrap.script(
            "stop", key="", workdir=str(folder / "kernel")), 60.0)
    shutil.rmtree(folder, ignore_errors=True)


async def gpus(provider: str | None, min_vram: float | None) -> list[dict[str, Any]]:
    """Rows of the GPU catalog: provider, id, name, vram_gb, price, availability.

    Without ``provider``: this machine plus every provider with a catalog whose
    credential variable is set; a provider without its credential is skipped,
    as asking for it would only fail.
    """
    from sindri_jupyter.core.engine import Engine

    names = [provider] if provider else _catalog_providers()
    engine = Engine()
    rows: list[dict[str, Any]] = []
    try:
        for name in names:
            if name == "local":
                # nvidia-smi blocks: keep it off the shared loop thread.
                rows.extend(await asyncio.to_thread(local_gpus))
                continue
            catalog = getattr(engine.provider(name), "gpus", None)
            if catalog is None:
                continue
            try:
                rows.extend(await catalog())
            except ProviderError as exc:
                if provider:  # asked for by name: its error is the answer
                    raise
                log.warning("GPUs of %s left out: %s; continuing, but run `sindri "
                            "gpus --provider %s` or `sindri doctor --provider %s` "
                            "to see why", name, exc.message, name, name)
    finally:
        await engine.aclose()
    if min_vram is not None:
        rows = [r for r in rows if (r.get("vram_gb") or 0) >= min_vram]
    return sorted(rows, key=lambda r: (r.get("price_per_hour") is None,
                                       r.get("price_per_hour") or 0))


def _catalog_providers() -> list[str]:
    """``local``, then each provider with ``gpus()`` whose credential is set."""
    from sindri_jupyter.core import provider as registry

    return ["local"] + [name for name in credentialed_providers()
                        if hasattr(registry.load(name), "gpus")]


def credentialed_providers() -> list[str]:
    """Cloud providers whose credential variable is set (``credential_env``)."""
    from sindri_jupyter.core import provider as registry

    names = []
    for name in registry.available():
        credential = getattr(registry.load(name), "credential_env", None)
        if credential and os.environ.get(credential):
            names.append(name)
    return names


def local_gpus() -> list[dict[str, Any]]:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    out = subprocess.run([smi, "--query-gpu=index,name,memory.total",
                          "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, timeout=20, env=os.environ)
    rows = []
    for line in out.stdout.strip().splitlines():
        index, name, mem = (part.strip() for part in line.split(",", 2))
        rows.append({"provider": "local", "id": index, "name": name,
                     "vram_gb": round(float(mem) / 1024, 1), "price_per_hour": 0.0,
                     "availability": "this machine"})
    return rows
