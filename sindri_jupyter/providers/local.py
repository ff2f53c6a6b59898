"""The ``local`` provider: an environment on this machine, no cloud needed.

The environment is a working folder plus an ipykernel process that outlives
the command that started it, so ``sindri run`` in a later command sees the
variables of an earlier one. It costs nothing and has no GPU of its own.
"""

from __future__ import annotations

import shutil
import sys

from sindri_jupyter.config.models import LocalSection, SindriConfig
from sindri_jupyter.config.report import section_notes
from sindri_jupyter.core import paths
from sindri_jupyter.core.types import (
    Capabilities, Check, Endpoint, Handle, Note, Observed, Plan, State,
)

_STOPPED = "stopped"


class LocalProvider:
    name = "local"
    capabilities = Capabilities(pause=True)
    needs_ssh_key = False

    async def plan(self, config: SindriConfig) -> Plan:
        section = config.section("local") or LocalSection()
        notes = section_notes(config)
        deployment = config.deployment
        if deployment.image:
            notes.append(Note("deployment.image", "not applicable",
                              "the local provider runs on this machine, not in a container"))
        if deployment.resources.gpu:
            notes.append(Note("deployment.resources.gpu", "not applicable",
                              "the local provider uses whatever GPUs this machine has"))
        python = section.python or sys.executable
        return Plan(provider="local", name=config.name, price_per_hour=0.0,
                    summary=f"this machine, kernel under {python}",
                    availability="available", notes=tuple(notes))

    async def create(self, config: SindriConfig, handle: Handle) -> Handle:
        section = config.section("local") or LocalSection()
        folder = paths.env_dir(handle.name)
        cwd = section.workdir or str(folder / "work")
        (folder / _STOPPED).unlink(missing_ok=True)
        data = dict(handle.data, python=section.python, cwd=cwd, host_workdir=str(
            folder / "kernel"))
        return Handle(handle.provider, handle.name, handle.marker,
                      resource_id=str(folder), data=data)

    async def find(self, handle: Handle) -> Handle | None:
        folder = paths.home() / "envs" / handle.name
        return handle if (folder / "kernel").exists() or folder.exists() else None

    async def get(self, handle: Handle) -> Observed:
        folder = paths.home() / "envs" / handle.name
        if not handle.resource_id or not folder.exists():
            return Observed(State.GONE, raw_state="missing",
                            message=f"{folder} does not exist")
        if (folder / _STOPPED).exists():
            return Observed(State.STOPPED, raw_state=_STOPPED, price_per_hour=0.0)
        return Observed(State.RUNNING, raw_state="running", price_per_hour=0.0,
                        endpoint=Endpoint(kind="local"))

    async def start(self, handle: Handle) -> None:
        (paths.env_dir(handle.name) / _STOPPED).unlink(missing_ok=True)

    async def stop(self, handle: Handle) -> None:
        (paths.env_dir(handle.name) / _STOPPED).touch()

    async def destroy(self, handle: Handle) -> None:
        folder = paths.home() / "envs" / handle.name
        shutil.rmtree(folder, ignore_errors=True)

    async def list_owned(self) -> list[Handle]:
        root = paths.home() / "envs"
        if not root.exists():
            return []
        return [Handle("local", p.name, "", resource_id=str(p))
                for p in sorted(root.iterdir()) if (p / "kernel").exists()]

    async def check(self) -> list[Check]:
        return []

    async def aclose(self) -> None:
        return None
