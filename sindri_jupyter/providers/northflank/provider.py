"""NorthflankProvider: the Provider protocol on Northflank deployment services.

Config read from ``config.providers.northflank`` (any object with these
attributes; a missing section or attribute takes the default in brackets):

    project_name [sindri-<region>]    project; created in ``region`` when missing
    service_name [config.name]        service; normalised to Northflank's grammar
    region [us-central]               project region (fixed once the project exists)
    compute_plan [see below]          nf-compute-... or, with a GPU, nf-gpu-...
    instances [1]                     deployment.instances
    auto_scaling.enabled [false], .min_instances [1], .max_instances [3],
    .target_cpu_percent [70]          autoscaling.horizontal on CPU
    ports [[]]                        ints (public HTTP) or {name, port, protocol, public}
    gpu.type, gpu.count or gpu_type   [deployment.resources.gpu]
    health_checks [[]]                {protocol, type, path, port, cmd,
                                       initial_delay_seconds, period_seconds,
                                       timeout_seconds, failure_threshold}

and ``config.name``, ``config.deployment.image`` / ``.env`` and
``config.deployment.resources`` (``cpu``, ``memory_gb``, ``disk_gb``, ``gpu``).
Without ``compute_plan`` the plan is the smallest covering cpu and memory_gb
(else nf-compute-100-2); a GPU uses ``nf-gpu-<type>-<count>g`` plus
``deployment.gpu.configuration``.

The service carries the tags ``sindri`` and ``sindri-m-<marker>`` and names the
environment and marker in its description, so ``find`` and ``list_owned``
work from Northflank's own listing. The engine's ``handle.data["public_key"]``
becomes a team SSH identity restricted to the project and the marker tag.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

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
    ConfigError,
    MissingCredential,
    ProviderAPIError,
)
from sindri_jupyter.providers.northflank import cli, names, spec
from sindri_jupyter.providers.northflank.api import (
    DEFAULT_BASE_URL,
    TOKEN_HINT,
    NorthflankApi,
)
from sindri_jupyter.providers.northflank.budget import MIN_INTERVAL
from sindri_jupyter.providers.northflank.diagnose import Diagnoser

log = logging.getLogger(__name__)

ROLE_HINT = ("the token is valid but its API role lacks permissions: give the role "
             "(Team > Settings > API > Roles) projects, services (create, read, "
             "pause, delete) and SSH identities, or create a token from a role that "
             "has them and export NORTHFLANK_API_TOKEN=...")
CATALOG_TTL = 3600.0  # seconds; plans and regions change a few times a year
STATES = {"PENDING": State.PROVISIONING, "IN_PROGRESS": State.STARTING,
          "COMPLETED": State.RUNNING, "FAILED": State.FAILED}


def _ids(handle: Handle) -> tuple[str, str]:
    project = handle.data.get("project_id")
    service = handle.data.get("service_id")
    if not (project and service) and "/" in handle.resource_id:
        project, service = handle.resource_id.split("/", 1)
    return str(project or ""), str(service or "")


class NorthflankProvider:
    """Northflank services; see the module docstring for the config it reads."""

    name = "northflank"
    capabilities = Capabilities(gpu=True, pause=True, volumes=False, autoscaling=True)
    credential_env = "NORTHFLANK_API_TOKEN"  # unset: `sindri gpus` skips us
    needs_ssh_key = True  # the engine then puts "public_key" in handle.data

    def __init__(self, section: Any = None, *, environ: Mapping[str, str] | None = None,
                 api: NorthflankApi | None = None, stuck_after: float = 300.0,
                 executable: str = cli.EXECUTABLE) -> None:
        # ``section`` follows the registry's calling convention; every call reads
        # the config it is given, so one provider serves many configs.
        self._env = os.environ if environ is None else environ
        self._api = api
        self._owns_api = api is None
        self._executable = executable
        self._stuck_after = stuck_after
        self._catalog: tuple[float, asyncio.Future] | None = None
        self._diagnoser: Diagnoser | None = None

    @property
    def base_url(self) -> str:
        if self._api is not None:
            return self._api.base_url
        return self._env.get("SINDRI_NORTHFLANK_API_URL") or DEFAULT_BASE_URL

    def api(self) -> NorthflankApi:
        if self._api is None:
            token = self._env.get("NORTHFLANK_API_TOKEN")
            if not token:
                raise MissingCredential("NORTHFLANK_API_TOKEN", provider=self.name,
                                        hint=TOKEN_HINT)
            self._api = NorthflankApi(token, self.base_url)
        return self._api

    def diagnoser(self) -> Diagnoser:
        if self._diagnoser is None:
            api = self.api()
            self._diagnoser = Diagnoser(api, api.budget.clock, self._stuck_after)
        return self._diagnoser

    async def aclose(self) -> None:
        if self._api is not None and self._owns_api:
            await self._api.aclose()
            self._api = None

    def poll_interval(self, handle: Handle | None = None) -> float:
        """Seconds the engine should wait between two ``get`` calls.

        It changes as the account's window drains and as more environments are
        polled, so ask again before every wait rather than once per phase.
        """
        if self._api is None:
            return MIN_INTERVAL
        return self._api.budget.poll_interval()

    @property
    def first_poll(self) -> float:
        """For an engine that sizes its back-off once: the current interval."""
        return self.poll_interval()

    @property
    def max_poll(self) -> float:
        return self.poll_interval()

    async def catalogue(self) -> tuple[list[dict], list[dict]]:
        """Plans and regions (with GPU devices), cached for an hour."""
        api, now = self.api(), time.monotonic()
        if self._catalog is None or now - self._catalog[0] > CATALOG_TTL:
            # Share the requests in flight: ten deploys at once ask once.
            self._catalog = (now, asyncio.ensure_future(self._fetch_catalogue(api)))
        task = self._catalog[1]
        try:
            return await asyncio.shield(task)
        except Exception:  # re-raised; only drops the cache entry
            if self._catalog is not None and self._catalog[1] is task:
                self._catalog = None  # a failure is not cached
            raise

    @staticmethod
    async def _fetch_catalogue(api) -> tuple[list[dict], list[dict]]:
        plans, regions = await asyncio.gather(
            api.call("list plans", api.sdk.list.plans),
            api.call("list regions", api.sdk.list.regions))
        return plans["plans"], regions["regions"]

    async def gpus(self) -> list[dict[str, Any]]:
        """The GPU catalog for ``sindri gpus``: VRAM, price per GPU-hour, regions."""
        return spec.gpu_rows(*await self.catalogue())

    # -- Provider protocol -------------------------------------------------------
    @staticmethod
    def validate(config: Any) -> None:
        """The checks that need no API call (``sindri config validate``)."""
        spec.settings_from(config)

    async def plan(self, config: Any) -> Plan:
        s = spec.settings_from(config)
        choice = spec.choose(s, *await self.catalogue())
        plan = choice.plan
        gpu = f", {s.gpu_count}x {choice.gpu['name']}" if choice.gpu else ""
        summary = (f"service {s.service} in project {s.project} ({s.region}) on "
                   f"{plan['id']} ({plan['cpuResource']:g} vCPU, "
                   f"{plan['ramResource'] / 1024:g} GB{gpu}) x{s.instances}, "
                   f"${choice.price_per_hour:.3f}/h")
        return Plan(
            provider=self.name, name=s.env_name, summary=summary,
            gpu=choice.gpu["id"] if choice.gpu else None,
            gpu_count=s.gpu_count if choice.gpu else 0,
            price_per_hour=choice.price_per_hour, availability=None,
            notes=spec.notes_for(s, choice),
            data={"project_id": s.project, "service_id": s.service, "region": s.region,
                  "plan": plan["id"], "plan_price_per_hour": plan["amountPerHour"]})

    async def create(self, config: Any, handle: Handle) -> Handle:
        """Project, then SSH identity, then the service; one POST of the service."""
        s = spec.settings_from(config)
        choice = spec.choose(s, *await self.catalogue())  # GPU/region check first
        await self._ensure_project(s)
        data = {**handle.data, "project_id": s.project, "service_id": s.service,
                "region": s.region, "plan": choice.plan["id"],
                "price_per_hour": choice.price_per_hour,
                "gpu": choice.gpu["id"] if choice.gpu else None,
                "gpu_count": s.gpu_count if choice.gpu else 0}
        mine = dataclasses.replace(handle, resource_id=f"{s.project}/{s.service}",
                                   data=data)
        if await self._existing(s, handle.marker):
            return mine  # our own earlier create, whose answer was lost
        if handle.data.get("public_key"):
            data["identity_id"] = await self._ensure_identity(s, handle)
        api = self.api()
        body = spec.service_body(s, choice, handle.marker)
        try:
            await api.call("create the service", api.sdk.create.service.deployment,
                           project_id=s.project, data=body)
        except ProviderAPIError as exc:
            if exc.status != 409 or not await self._existing(s, handle.marker):
                raise
        log.info("created Northflank service %s/%s on %s", s.project, s.service,
                 choice.plan["id"])
        return mine

    async def _ensure_project(self, s: spec.Settings) -> None:
        api = self.api()
        try:
            found = await api.call("read the project", api.sdk.get.project,
                                   project_id=s.project)
        except ProviderAPIError as exc:
            if exc.status != 404:
                raise
            found = await self._create_project(s)
            if found is None:
                return
        region = (found.get("deployment") or {}).get("region") or found.get("region")
        if region and region != s.region:
            raise ConfigError(
                [(f"project {s.project!r} exists in region {region!r}, not "
                 f"{s.region!r}")],
                hint=f"set region: {region}, or choose another project_name "
                "(a project's region cannot change)")

    async def _create_project(self, s: spec.Settings) -> dict[str, Any] | None:
        """Create the project; None when made, the project when another deploy won.

        Deploys started together (a workshop) all see the 404; the losers get a
        409 and read the winner's project, whose region must still match.
        """
        api = self.api()
        try:
            await api.call("create the project", api.sdk.create.project,
                           data=spec.project_body(s))
        except ProviderAPIError as exc:
            if exc.status != 409:
                raise
            return await api.call("read the project", api.sdk.get.project,
                                  project_id=s.project)
        log.info("created Northflank project %s in %s", s.project, s.region)
        return None

    async def _existing(self, s: spec.Settings, marker: str) -> bool:
        """True when the service id is taken by this environment; error if by another."""
        api = self.api()
        try:
            found = await api.call("read the service", api.sdk.get.service,
                                   project_id=s.project, service_id=s.service)
        except ProviderAPIError as exc:
            if exc.status == 404:
                return False
            raise
        if names.marker_tag(marker) in (found.get("tags") or []):
            return True
        owner = names.parse_description(found.get("description"))
        who = f"sindri environment {owner[0]!r}" if owner else "something else"
        raise ProviderAPIError(
            f"service name {s.service!r} (from {s.env_name!r}) derives the id "
            f"{s.service!r}, already used in project {s.project!r} by {who}",
            provider=self.name, status=409,
            hint="set providers.northflank.service_name to another name, or destroy "
            "the existing service first" + (f" (`sindri destroy {owner[0]}`)"
                                            if owner else " in the Northflank UI"))

    async def _ensure_identity(self, s: spec.Settings, handle: Handle) -> str:
        """Create or update the team SSH identity holding the environment's key."""
        api = self.api()
        name = names.identity_name(s.project, s.service)
        body = spec.identity_body(name, str(handle.data["public_key"]), s.project,
                                  handle.marker)
        listed = await api.call_all("list SSH identities", api.sdk.list.ssh_identities,
                                    "identities")
        found = next((i for i in listed if i.get("name") == name), None)
        if found is None:
            made = await api.call("add the SSH identity", api.sdk.add.ssh_identities,
                                  data=body)
            return str(made["id"])
        update = {k: v for k, v in body.items() if k != "name"}
        await api.call("update the SSH identity", api.sdk.update.ssh_identities,
                       identity_id=found["id"], data=update)
        return str(found["id"])

    async def find(self, handle: Handle) -> Handle | None:
        tag = names.marker_tag(handle.marker)
        for project in await self._projects(handle):
            for item in await self._services(project):
                if tag in (item.get("tags") or []):
                    data = {**handle.data, "project_id": project,
                            "service_id": item["id"]}
                    return dataclasses.replace(
                        handle, resource_id=f"{project}/{item['id']}", data=data)
        return None

    async def _projects(self, handle: Handle) -> list[str]:
        if handle.data.get("project_id"):
            return [str(handle.data["project_id"])]
        api = self.api()
        return [p["id"] for p in await api.call_all(
            "list projects", api.sdk.list.projects, "projects")]

    async def _services(self, project: str) -> list[dict[str, Any]]:
        api = self.api()
        return await api.call_all("list services", api.sdk.list.services, "services",
                                  project_id=project)

    async def get(self, handle: Handle) -> Observed:
        if not handle.resource_id:
            found = await self.find(handle)
            if found is None:
                return Observed(State.GONE, message=f"no service carries marker "
                                f"{handle.marker}")
            handle = found
        project, service = _ids(handle)
        api = self.api()
        api.budget.note_poll(handle.marker)
        try:
            data = await api.call("read the service", api.sdk.get.service,
                                  project_id=project, service_id=service)
        except ProviderAPIError as exc:
            if exc.status != 404:
                raise
            api.budget.forget(handle.marker)
            return Observed(State.GONE, raw_state="404",
                            message=f"service {project}/{service} no longer exists")
        return await self.observe(handle, data)

    async def observe(self, handle: Handle, data: dict[str, Any]) -> Observed:
        status = ((data.get("status") or {}).get("deployment") or {}).get("status")
        paused = data.get("servicePaused")
        instances = (data.get("deployment") or {}).get("instances")
        state = STATES.get(str(status), State.UNKNOWN)
        if paused is True or (state is State.RUNNING and instances == 0):
            state = State.STOPPED
        raw = f"{status}{' paused' if paused else ''}"
        project, service = _ids(handle)
        message = f"service {project}/{service}: deployment {status or 'without status'}"
        if paused:
            message += ", paused"
        if state is State.UNKNOWN:
            message += " (a status this version does not know)"
        extra = await self.diagnoser().explain(handle.marker, project, service,
                                               data, state)
        endpoint = None
        if state is State.RUNNING and ((data.get("deployment") or {}).get("ssh")
                                       or {}).get("enabled"):
            endpoint = Endpoint(kind="ssh", host="127.0.0.1", port=0, user="root",
                                extra={"proxy": cli.proxy_argv(project, service,
                                                               self._executable),
                                       "proxy_mode": "listen",
                                       "project_id": project, "service_id": service})
        price = handle.data.get("price_per_hour")
        return Observed(state, raw_state=raw, endpoint=endpoint,
                        message=message + (f"; {extra}" if extra else ""),
                        price_per_hour=0.0 if state is State.STOPPED else price)

    async def start(self, handle: Handle) -> None:
        project, service = _ids(handle)
        api = self.api()
        try:
            await api.call("resume the service", api.sdk.resume.service,
                           project_id=project, service_id=service, data={})
        except ProviderAPIError as exc:
            if exc.status != 409:
                raise
            log.debug("resume %s/%s: not paused, nothing to do", project, service)

    async def stop(self, handle: Handle) -> None:
        project, service = _ids(handle)
        api = self.api()
        await api.call("pause the service", api.sdk.pause.service,
                       project_id=project, service_id=service)

    async def destroy(self, handle: Handle) -> None:
        target = handle if handle.resource_id else await self.find(handle)
        if target is None:
            return
        project, service = _ids(target)
        api = self.api()
        await self._gone_ok(api.call("delete the service", api.sdk.delete.service,
                                     project_id=project, service_id=service))
        identity = target.data.get("identity_id") or names.identity_name(project,
                                                                         service)
        await self._gone_ok(api.call("delete the SSH identity",
                                     api.sdk.delete.ssh_identities,
                                     identity_id=identity))
        api.budget.forget(handle.marker)

    @staticmethod
    async def _gone_ok(call: Any) -> None:
        try:
            await call
        except ProviderAPIError as exc:
            if exc.status != 404:
                raise

    async def list_owned(self) -> list[Handle]:
        owned = []
        for project in await self._projects(Handle(self.name, "", "")):
            for item in await self._services(project):
                parsed = names.parse_description(item.get("description"))
                if names.OWNER_TAG not in (item.get("tags") or []) or parsed is None:
                    continue
                owned.append(Handle(
                    provider=self.name, name=parsed[0], marker=parsed[1],
                    resource_id=f"{project}/{item['id']}",
                    data={"project_id": project, "service_id": item["id"]}))
        return owned

    async def check(self) -> list[Check]:
        """The token (one cheap call, GET /v1/auth) and the CLI used for SSH."""
        return [await self._token_check(), *await cli.checks(self._executable)]

    async def _token_check(self) -> Check:
        if self._api is None and not self._env.get("NORTHFLANK_API_TOKEN"):
            return Check("northflank API token", False,
                         "NORTHFLANK_API_TOKEN is not set", fix=TOKEN_HINT)
        api = self.api()
        try:
            who = await api.call("check the token", api.sdk.get.auth)
        except AuthError as exc:
            return Check("northflank API token", False, exc.message,
                         fix=ROLE_HINT if exc.status == 403 else exc.hint)
        except ProviderAPIError as exc:
            return Check("northflank API", False, exc.message, fix=exc.hint)
        expires = who.get("expiresAt")
        return Check("northflank API token", True,
                     f"accepted by {self.base_url}: {who.get('entityType', 'team')} "
                     f"{who.get('entityId', '?')}, token {who.get('name', '?')}"
                     + (f", expires {expires}" if expires else "")
                     + f"; {api.budget.describe()}")
