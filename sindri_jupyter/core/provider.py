"""The Provider protocol and the registry of providers.

Who calls what: only the lifecycle engine (``core.engine``) calls a provider.
Providers translate between the neutral types of ``core.types`` and one API; they
never wait, retry, record or price on their own (the engine and ``core.http`` do).
Third-party providers register a class under the ``sindri_jupyter.providers``
entry-point group; the class is built with the validated ``SindriConfig`` section.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sindri_jupyter.core.types import Capabilities, Check, Handle, Observed, Plan
from sindri_jupyter.errors import UsageError

if TYPE_CHECKING:
    from sindri_jupyter.config.models import SindriConfig

ENTRY_POINT_GROUP = "sindri_jupyter.providers"

BUILTIN = {
    "local": "sindri_jupyter.providers.local:LocalProvider",
    "ssh": "sindri_jupyter.providers.ssh:SSHProvider",
    "runpod": "sindri_jupyter.providers.runpod:RunPodProvider",
    "northflank": "sindri_jupyter.providers.northflank:NorthflankProvider",
}


@runtime_checkable
class Provider(Protocol):
    """What every provider adapter offers; all methods are coroutines.

    - ``plan(config)``: price and notes, no side effects.
    - ``create(config, handle)``: start creating; return the handle with
      ``resource_id`` set. Called once; never retried by the engine without
      ``find(handle)`` first.
    - ``find(handle)``: look the resource up by ``handle.marker`` after a create
      whose answer was lost; None when it does not exist.
    - ``get(handle)``: observe; a vanished resource is ``State.GONE``.
    - ``start``/``stop``/``destroy(handle)``: ask for the change, do not wait.
    - ``list_owned()``: handles of every resource this tool made (for orphans).
    - ``check()``: doctor lines for this provider.
    """

    name: str
    capabilities: Capabilities

    async def plan(self, config: "SindriConfig") -> Plan: ...
    async def create(self, config: "SindriConfig", handle: Handle) -> Handle: ...
    async def find(self, handle: Handle) -> Handle | None: ...
    async def get(self, handle: Handle) -> Observed: ...
    async def start(self, handle: Handle) -> None: ...
    async def stop(self, handle: Handle) -> None: ...
    async def destroy(self, handle: Handle) -> None: ...
    async def list_owned(self) -> list[Handle]: ...
    async def check(self) -> list[Check]: ...
    async def aclose(self) -> None: ...


def available() -> list[str]:
    """Names of every provider: the built-in ones and registered plug-ins."""
    return sorted(set(BUILTIN) | set(_entry_points()))


def load(name: str) -> type:
    """The provider class registered as ``name``, imported on first use."""
    target = BUILTIN.get(name) or _entry_points().get(name)
    if target is None:
        raise UsageError(
            f"unknown provider {name!r}",
            hint="choose one of: " + ", ".join(available()),
        )
    module_name, _, attr = target.partition(":")
    import importlib

    return getattr(importlib.import_module(module_name), attr)


def _entry_points() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
