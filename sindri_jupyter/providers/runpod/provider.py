"""RunPodProvider: the Provider protocol on RunPod REST v2 GPU pods.

Config read, from ``config.providers.runpod`` (any object with these
attributes; a missing section or attribute means the default in brackets):

    name [config.name]              pod name prefix; the marker is appended
    gpu_type_id [resources.gpu.type] catalog id or display name, any spelling
    gpu_count [resources.gpu.count or 1]
    gpu_fallbacks [[]]              GPUs to try in order when out of capacity
    cloud_type [SECURE]             SECURE | COMMUNITY (spot is retired)
    container_disk_in_gb [resources.disk_gb or RunPod's default]
    volume_in_gb [none]             host-local persistent volume, >= 10 GB
    volume_mount_path [/workspace]  where the volume mounts
    network_volume_id [none]        attach this network volume (wins over volume_in_gb)
    data_center_ids [[]]            RunPod enforces these, it does not prefer them
    ports [[]]                      extra ports; 22/tcp is always added
    python [python3]                the image's Python for the kernel (read when
                                    the section has the key)
    compute_plan, docker_args       not applicable (reported in the plan)

and ``config.name``, ``config.deployment.image``, ``config.deployment.env``.
Reading and defaults live in ``settings``; retired keys (spot) are refused there.

The pod carries ``SINDRI_MARKER`` (``handle.marker``) in its env and at the end
of its name, so ``find`` resolves a create whose answer was lost, and
``list_owned`` finds every pod this tool made. The plan's data tells the
remote layer where the kernel runs: in ``volume_mount_path`` (``/workspace``),
with its working files in a private folder on the container disk.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from sindri_jupyter.core.types import (
    Capabilities,
    Check,
    Endpoint,
    Handle,
    Observed,
    Plan,
    State,
)
from sindri_jupyter.errors import (
    AuthError,
    CapacityError,
    ProviderAPIError,
)
from sindri_jupyter.providers.runpod import gpus
from sindri_jupyter.providers.runpod.client import DEFAULT_BASE_URL, RunPodClient
from sindri_jupyter.providers.runpod.models import GpuType, Pod
from sindri_jupyter.providers.runpod.settings import (
    MARKER_ENV,
    NAME_ENV,
    Settings,
    notes_for,
    pod_body,
    settings_from,
)

log = logging.getLogger(__name__)

CATALOG_TTL = 60.0  # seconds a catalog answer is reused between plan and create

STATES = {
    "PROVISIONING": State.PROVISIONING,
    "STARTING": State.STARTING,
    "RUNNING": State.RUNNING,
    "EXITED": State.STOPPED,
    "ERROR": State.FAILED,
    "TERMINATED": State.GONE,
}
def ssh_endpoint(pod: Pod, *, allow_loopback: bool = False) -> Endpoint | None:
    """The direct SSH endpoint: a public TCP mapping of private port 22.

    Never a private address and never the HTTP proxy. Loopback is accepted only
    when the API itself is on loopback (the fake RunPod in tests and rehearsals).
    """
    direct = pod.ssh_direct  # same mapping, reported on its own by v2
    user = (direct.username if direct else "") or "root"
    for port in pod.runtime_ports:
        if port.private == 22 and port.type.lower() == "tcp" and port.public:
            if _public_ip(port.ip, allow_loopback):
                return Endpoint(kind="ssh", host=str(port.ip), port=int(port.public),
                                user=user, extra={"pod_id": pod.id})
    if direct is not None and _public_ip(direct.host, allow_loopback):
        return Endpoint(kind="ssh", host=direct.host, port=direct.port,
                        user=user, extra={"pod_id": pod.id})
    return None


def _public_ip(text: str | None, allow_loopback: bool) -> bool:
    try:
        address = ipaddress.ip_address(text or "")
    except ValueError:
        return False
    return address.is_global or (allow_loopback and address.is_loopback)


def _is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RunPodProvider:
    """GPU pods on RunPod; see the module docstring for the config it reads."""

    name = "runpod"
    capabilities = Capabilities(gpu=True, pause=True, volumes=True, autoscaling=False)
    # The engine then puts the environment's public key in handle.data, which
    # create delivers as PUBLIC_KEY for the image's sshd.
    credential_env = "RUNPOD_API_KEY"  # unset: `sindri gpus` skips us
    needs_ssh_key = True
    # While waiting: one request every 2 s at first, backing off to one every 10 s.
    first_poll = 2.0
    max_poll = 10.0

    def __init__(
        self,
        section: Any = None,
        *,
        client: RunPodClient | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        # ``section`` is accepted for the registry's calling convention; every
        # call reads the config it is given, so one provider serves many configs.
        self._env = os.environ if environ is None else environ
        self._client = client
        self._owns_client = client is None
        self._catalogs: dict[tuple[str, int], tuple[float, asyncio.Future]] = {}

    @property
    def base_url(self) -> str:
        if self._client is not None:
            return self._client.base_url
        return self._env.get("SINDRI_RUNPOD_API_URL") or DEFAULT_BASE_URL

    def client(self) -> RunPodClient:
        if self._client is None:
            self._client = RunPodClient.from_env(self._env)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None

    async def catalog(self, cloud: str, count: int) -> list[GpuType]:
        """GPU types with availability for ``count`` GPUs in ``cloud``, cached briefly."""
        key, now = (cloud, count), time.monotonic()
        cached = self._catalogs.get(key)
        if cached and now - cached[0] < CATALOG_TTL:
            return await asyncio.shield(cached[1])
        # Share the request in flight: a workshop plans 30 deploys at once.
        task = asyncio.ensure_future(
            self.client().gpu_types(availability=True, count=count, cloud=cloud))
        self._catalogs[key] = (now, task)
        try:
            return await asyncio.shield(task)
        except Exception:  # re-raised; only drops the cache entry
            if self._catalogs.get(key, (0.0, None))[1] is task:
                del self._catalogs[key]  # a failure is not cached
            raise

    async def gpus(self) -> list[dict[str, Any]]:
        """The catalog for ``sindri gpus``: VRAM, both prices, live availability."""
        secure, community = await asyncio.gather(self.catalog("SECURE", 1),
                                                 self.catalog("COMMUNITY", 1))
        return gpus.table(secure, community)

    # -- Provider protocol ------------------------------------------------------

    @staticmethod
    def validate(config: Any) -> None:
        """The checks that need no API call (``sindri config validate``)."""
        settings_from(config)

    async def plan(self, config: Any) -> Plan:
        s = settings_from(config)
        catalog = await self.catalog(s.cloud, s.gpu_count)
        gpu = gpus.resolve(s.gpu, catalog, where="providers.runpod.gpu_type_id")
        fallbacks = [gpus.resolve(f, catalog, where="providers.runpod.gpu_fallbacks").id
                     for f in s.fallbacks]
        unit = gpu.price(s.cloud)
        price = unit * s.gpu_count if unit is not None else None
        availability = gpu.availability or "unknown"
        shown = f"${price:.2f}/h" if price is not None else "price unknown"
        summary = (f"{s.gpu_count}x {gpu.name} ({gpu.memory} GB) on RunPod "
                   f"{s.cloud} cloud, {shown}, availability {availability}")
        return Plan(
            provider=self.name, name=getattr(config, "name", s.pod_name),
            summary=summary, gpu=gpu.id, gpu_count=s.gpu_count, price_per_hour=price,
            availability=availability, notes=notes_for(s, _section_of(config), gpu.id),
            data={"cloud": s.cloud, "fallbacks": fallbacks, "image": s.image,
                  **s.kernel_data(str(getattr(config, "name", s.pod_name)))},
        )

    async def create(self, config: Any, handle: Handle) -> Handle:
        """One create per GPU choice; the next choice only after a capacity 400."""
        s = settings_from(config)
        catalog = await self.catalog(s.cloud, s.gpu_count)
        choices = [gpus.resolve(name, catalog, where="providers.runpod.gpu_type_id")
                   for name in (s.gpu, *s.fallbacks)]
        refused: list[CapacityError] = []
        env_name = str(getattr(config, "name", s.pod_name))
        for gpu in choices:
            try:
                pod = await self.client().create_pod(pod_body(s, gpu.id, handle, env_name))
            except CapacityError as exc:
                log.info("no capacity for %s on %s cloud; %d choice(s) left", gpu.id,
                         s.cloud, len(choices) - len(refused) - 1)
                refused.append(exc)
                continue
            log.info("created pod %s (%s x%d)", pod.id, gpu.id, s.gpu_count)
            data = {**handle.data, "pod_name": pod.name, "gpu": gpu.id,
                    "gpu_count": s.gpu_count, "cloud": s.cloud,
                    "price_per_hour": pod.cost if pod.cost else gpu.price(s.cloud)}
            return dataclasses.replace(handle, resource_id=pod.id, data=data)
        raise await self._no_capacity(s, choices, refused[-1])

    async def _no_capacity(self, s: Settings, choices: Sequence[GpuType],
                           last: CapacityError) -> CapacityError:
        other = "COMMUNITY" if s.cloud == "SECURE" else "SECURE"
        fresh = await self.client().gpu_types(count=s.gpu_count, cloud=s.cloud)
        other_cloud = await self.client().gpu_types(count=s.gpu_count, cloud=other)
        options = gpus.alternatives(
            choices[0], cloud=s.cloud, count=s.gpu_count, same_cloud=fresh,
            other_cloud=other_cloud, pinned_dcs=s.data_center_ids,
        )
        tried = ", ".join(g.id for g in choices)
        hint = ("try: " + "; ".join(options)) if options else \
            "no similar GPU is free right now; try again later"
        return CapacityError(
            f"no {s.cloud} capacity for {s.gpu_count}x {tried}",
            provider=self.name, status=last.status, request_id=last.request_id,
            detail=last.detail, hint=hint + " (set gpu_fallbacks to try them in order)",
            alternatives=options,
        )

    async def find(self, handle: Handle) -> Handle | None:
        matches = [p for p in await self.client().list_pods() if _marked(p, handle.marker)]
        if not matches:
            return None
        if len(matches) > 1:
            log.warning("%d pods carry marker %s: %s; keeping the first, destroy the "
                        "others by hand", len(matches), handle.marker,
                        ", ".join(p.id for p in matches))
        return dataclasses.replace(handle, resource_id=matches[0].id)

    async def get(self, handle: Handle) -> Observed:
        if not handle.resource_id:
            found = await self.find(handle)
            if found is None:
                return Observed(State.GONE, message=f"no pod carries {handle.marker}")
            handle = found
        try:
            pod = await self.client().get_pod(handle.resource_id)
        except ProviderAPIError as exc:
            if exc.status == 404:
                return Observed(State.GONE, raw_state="404",
                                message=f"pod {handle.resource_id} no longer exists")
            raise
        return self.observe(pod)

    def observe(self, pod: Pod) -> Observed:
        state = STATES.get(pod.status.upper(), State.UNKNOWN)
        endpoint = None
        if state is State.RUNNING:
            endpoint = ssh_endpoint(pod, allow_loopback=_is_loopback_url(self.base_url))
        message = f"pod {pod.id} is {pod.status or 'without status'}"
        if state is State.RUNNING and endpoint is None:
            message += "; no public TCP mapping for port 22 yet"
        elif state is State.UNKNOWN:
            message += " (a status this version does not know)"
        return Observed(state, raw_state=pod.status, endpoint=endpoint,
                        message=message, price_per_hour=pod.cost)

    async def start(self, handle: Handle) -> None:
        try:
            await self._action(handle, "start",
                               ok={"RUNNING", "STARTING", "PROVISIONING"})
        except CapacityError as exc:
            # A stopped pod is tied to its host; only a fresh pod gets new GPUs.
            raise CapacityError(
                f"pod {handle.resource_id} of {handle.name!r} cannot start: the "
                f"GPUs of its host are taken ({exc.detail or exc.message})",
                provider=self.name, status=exc.status, request_id=exc.request_id,
                detail=exc.detail,
                hint=f"try `sindri start {handle.name}` again later, or get a fresh "
                f"pod on another host: `sindri destroy {handle.name} --yes` then "
                "`sindri deploy` with the same file (the container disk and a "
                "pod volume are lost; a network volume is kept)",
            ) from exc

    async def stop(self, handle: Handle) -> None:
        await self._action(handle, "stop", ok={"EXITED"})

    async def _action(self, handle: Handle, action: str, *, ok: set[str]) -> None:
        try:
            await self.client().pod_action(handle.resource_id, action)
        except ProviderAPIError as exc:
            if exc.status != 409:
                raise
            pod = await self.client().get_pod(handle.resource_id)
            if pod.status not in ok:
                raise
            log.debug("%s pod %s: already %s", action, pod.id, pod.status)

    async def destroy(self, handle: Handle) -> None:
        target = handle if handle.resource_id else await self.find(handle)
        if target is None:
            return
        try:
            await self.client().delete_pod(target.resource_id)
        except ProviderAPIError as exc:
            if exc.status != 404:
                raise

    async def list_owned(self) -> list[Handle]:
        return [
            Handle(provider=self.name, name=p.env.get(NAME_ENV) or p.name,
                   marker=p.env[MARKER_ENV], resource_id=p.id,
                   data={"gpu": p.gpu_id, "price_per_hour": p.cost})
            for p in await self.client().list_pods() if p.env.get(MARKER_ENV)
        ]

    async def check(self) -> list[Check]:
        """One cheap call (list pods) that explains a refused key plainly."""
        if not self._env.get("RUNPOD_API_KEY") and self._client is None:
            return [Check("runpod API key", False, "RUNPOD_API_KEY is not set",
                          fix="create a key in the RunPod console (Settings > API "
                          "Keys) and export RUNPOD_API_KEY=...")]
        try:
            pods = await self.client().list_pods()
        except AuthError as exc:
            return [Check("runpod API key", False, exc.message, fix=exc.hint)]
        except ProviderAPIError as exc:
            return [Check("runpod API", False, exc.message, fix=exc.hint)]
        owned = sum(1 for p in pods if p.env.get(MARKER_ENV))
        return [Check("runpod API key", True, f"accepted by {self.base_url}; "
                      f"{len(pods)} pod(s), {owned} made by sindri")]


def _marked(pod: Pod, marker: str) -> bool:
    return pod.env.get(MARKER_ENV) == marker or pod.name.endswith(f"-{marker}")


def _section_of(config: Any) -> Any:
    return getattr(getattr(config, "providers", None), "runpod", None)
