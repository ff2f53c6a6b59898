"""From the config to Northflank request bodies: settings, plan choice, GPU check.

Pure functions over the config and the catalogue (``/v1/plans``,
``/v1/regions``); no I/O, so plan and create agree and tests need no server.
Config attributes read are listed at the top of ``provider.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sindri_jupyter.core.types import Note
from sindri_jupyter.errors import ConfigError
from sindri_jupyter.providers.northflank import names

IMAGE_TAGGED = re.compile(r"^[^@]+:[A-Za-z0-9_.\-]+$|@sha256:[0-9a-f]{64}$")
DEFAULT_PLAN = "nf-compute-100-2"  # 1 vCPU, 2 GB: room for a kernel
KEEP_ALIVE = "sleep infinity"  # a dev image's own command often exits at once
SECTION = "providers.northflank"


@dataclass(frozen=True)
class Settings:
    env_name: str
    project: str  # a valid name that equals its id
    service: str
    region: str
    image: str
    env: dict[str, str]
    instances: int
    compute_plan: str | None
    cpu: float | None
    memory_gb: float | None
    disk_gb: int | None
    gpu_type: str | None
    gpu_count: int
    autoscaling: dict[str, Any] | None
    ports: tuple[dict[str, Any], ...]
    health_checks: tuple[dict[str, Any], ...]
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True)
class Choice:
    """The plan (and GPU) a deploy uses, with its price per hour."""

    plan: dict[str, Any]
    gpu: dict[str, Any] | None
    price_per_hour: float
    notes: tuple[Note, ...] = field(default_factory=tuple)


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if obj is None:
        return default
    value = obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)
    return default if value is None else value


def settings_from(config: Any) -> Settings:
    """Read the config (any attribute-bearing object) and check the names."""
    section = _get(_get(config, "providers"), "northflank")
    deployment = _get(config, "deployment")
    resources = _get(deployment, "resources")
    env_name = str(_get(config, "name", "sindri"))
    region = str(_get(section, "region", "us-central"))
    notes: list[Note] = []
    project = _name(_get(section, "project_name", f"sindri-{region}"), "project_name",
                    names.PROJECT_MAX, notes)
    service = _name(_get(section, "service_name", env_name), "service_name",
                    names.SERVICE_MAX, notes)
    gpu = _get(section, "gpu") or _get(resources, "gpu")
    return Settings(
        env_name=env_name, project=project, service=service, region=region,
        image=_image(_get(deployment, "image")),
        env={str(k): str(v) for k, v in dict(_get(deployment, "env", {})).items()},
        instances=int(_get(section, "instances", 1)),
        compute_plan=_get(section, "compute_plan"),
        cpu=_get(resources, "cpu"), memory_gb=_get(resources, "memory_gb"),
        disk_gb=_get(resources, "disk_gb"),
        gpu_type=_get(section, "gpu_type") or _get(gpu, "type"),
        gpu_count=int(_get(gpu, "count", 1)),
        autoscaling=_autoscaling(_get(section, "auto_scaling")),
        ports=tuple(_port(p) for p in _get(section, "ports", []) or []),
        health_checks=tuple(_health(h) for h in _get(section, "health_checks", [])),
        notes=tuple(notes),
    )


def _name(raw: Any, key: str, max_len: int, notes: list[Note]) -> str:
    raw = str(raw)
    if names.is_valid(raw, max_len) and names.derive_id(raw) == raw:
        return raw
    fixed = names.normalise(raw, max_len)
    notes.append(Note(key, "mapped", f"{raw!r} -> {fixed!r}: Northflank names are "
                      f"3-{max_len} letters, digits and '-', and ids derive from them"))
    return fixed


def _image(image: Any) -> str:
    if not image:
        raise ConfigError(["deployment.image is not set"],
                          hint="Northflank services run an image, e.g. "
                          "pytorch/pytorch:2.0.1-cuda11.8-cudnn8-runtime")
    if not IMAGE_TAGGED.search(str(image).rsplit("/", 1)[-1]) and "@" not in str(image):
        raise ConfigError([f"deployment.image {image!r} has no tag"],
                          hint="Northflank needs an explicit tag or digest, e.g. "
                          f"{image}:latest")
    return str(image)


def _autoscaling(scaling: Any) -> dict[str, Any] | None:
    if not _get(scaling, "enabled", False):
        return None
    low, high = int(_get(scaling, "min_instances", 1)), int(_get(scaling, "max_instances", 3))
    if high < low:
        raise ConfigError([(f"{SECTION}.auto_scaling: max_instances {high} is below "
                           f"min_instances {low}")], hint="raise max_instances")
    return {"horizontal": {
        "enabled": True, "minReplicas": low, "maxReplicas": high,
        "cpu": {"enabled": True,
                "thresholdPercentage": int(_get(scaling, "target_cpu_percent", 70))}}}


def _port(port: Any) -> dict[str, Any]:
    """An int is a public HTTP port; an object gives name/port/protocol/public."""
    if isinstance(port, int):
        number, protocol, public, name = port, "HTTP", True, f"p{port}"
    else:
        number = _get(port, "port") or _get(port, "internal_port")
        protocol = str(_get(port, "protocol", "HTTP")).upper()
        public = bool(_get(port, "public", protocol in ("HTTP", "HTTP/2")))
        name = names.normalise(str(_get(port, "name", f"p{number}")), 8)
    if not isinstance(number, int) or not 1 <= number <= 65535 or number == 22:
        raise ConfigError([f"{SECTION}.ports: {number!r} is not a usable port"],
                          hint="use 1-65535 except 22 (Northflank opens SSH itself)")
    if public and protocol in ("TCP", "UDP"):
        raise ConfigError([(f"{SECTION}.ports: {protocol} port {number} cannot be "
                           "public on Northflank")], hint="set public: false")
    return {"name": name[:8].rstrip("-"), "internalPort": number,
            "protocol": protocol, "public": public}


def _health(check: Any) -> dict[str, Any]:
    body = {"protocol": str(_get(check, "protocol", "HTTP")).upper(),
            "type": _get(check, "type", "readinessProbe"),
            "initialDelaySeconds": int(_get(check, "initial_delay_seconds", 10)),
            "periodSeconds": int(_get(check, "period_seconds", 30)),
            "timeoutSeconds": int(_get(check, "timeout_seconds", 5)),
            "failureThreshold": int(_get(check, "failure_threshold", 3))}
    for key, api in (("path", "path"), ("port", "port"), ("cmd", "cmd"),
                     ("success_threshold", "successThreshold")):
        if _get(check, key) is not None:
            body[api] = _get(check, key)
    return body


# --- plan and GPU choice ----------------------------------------------------
def choose(s: Settings, plans: list[dict], regions: list[dict]) -> Choice:
    """The plan to deploy on; GPU in the wrong region fails here, before create."""
    by_id = {p["id"]: p for p in plans}
    if s.gpu_type:
        gpu = resolve_gpu(s.gpu_type, s.gpu_count, s.region, regions)
        plan = _gpu_plan(s, gpu, by_id)
        price = float(plan["amountPerHour"]) + s.gpu_count * _gpu_price(gpu)
        note = Note("gpu", "mapped", f"billing.deploymentPlan {plan['id']} + "
                    f"deployment.gpu {gpu['id']} x{s.gpu_count}")
        return Choice(plan, gpu, round(price * s.instances, 4), (note,))
    plan, note = _compute_plan(s, by_id)
    return Choice(plan, None, round(float(plan["amountPerHour"]) * s.instances, 4),
                  (note,))


def resolve_gpu(wanted: str, count: int, region: str, regions: list[dict]) -> dict:
    """The region's GPU device for ``wanted`` (id, name, or short name)."""
    devices: dict[str, tuple[dict, list[str]]] = {}
    for reg in regions:
        for dev in reg.get("gpuDevices", []):
            devices.setdefault(dev["id"], (dev, []))[1].append(reg["id"])
    key = _gpu_key(wanted)
    matches = [gid for gid, (dev, _) in devices.items()
               if key in (_gpu_key(gid), _gpu_key(dev["name"]))]
    matches = matches or [gid for gid in devices if _gpu_key(gid).startswith(key)]
    if len(matches) != 1:
        known = ", ".join(sorted(devices))
        what = "is ambiguous" if matches else "is not a Northflank GPU"
        raise ConfigError([f"GPU {wanted!r} {what}"], hint=f"use one of: {known}")
    device, where = devices[matches[0]]
    if region not in where:
        raise ConfigError(
            [f"{SECTION}.region {region!r} has no {device['name']} ({device['id']})"],
            hint="regions with it: " + ", ".join(sorted(where)) + " (a project's "
            "region is fixed; set region, or project_name for a new project)")
    local = next(d for r in regions if r["id"] == region for d in r["gpuDevices"]
                 if d["id"] == device["id"])
    options = [int(n) for n in local.get("countOptions", [])]
    if count not in options:
        raise ConfigError([f"{count}x {local['id']} is not offered"],
                          hint=f"GPU count for {local['id']} must be one of {options}")
    return local


def gpu_rows(plans: list[dict], regions: list[dict]) -> list[dict[str, Any]]:
    """Rows for ``sindri gpus``: one per GPU type, priced per GPU-hour.

    A GPU comes with a GPU plan (bundled vCPU and memory), so the price of one
    GPU is (plan + n x GPU) / n for the smallest count ``n`` Northflank offers.
    Availability is where it is offered: Northflank publishes no live stock.
    """
    by_id = {p["id"]: p for p in plans}
    found: dict[str, tuple[dict, list[str]]] = {}
    for reg in regions:
        for dev in reg.get("gpuDevices", []):
            found.setdefault(dev["id"], (dev, []))[1].append(reg["id"])
    rows = []
    for gid, (dev, where) in found.items():
        n = min(int(c) for c in dev.get("countOptions") or [1])
        plan = by_id.get(f"nf-gpu-{gid}-{n}g")
        price = None if plan is None else round(
            (float(plan["amountPerHour"]) + n * _gpu_price(dev)) / n, 4)
        rows.append({
            "provider": "northflank", "id": gid, "name": dev.get("name", gid),
            "vram_gb": round((dev.get("memoryInfo") or {}).get("sizeInMiB", 0) / 1024),
            "price_per_hour": price, "community_price_per_hour": None,
            "min_count": n, "regions": sorted(where),
            "availability": f"offered in {len(where)} region(s)",
        })
    return sorted(rows, key=lambda r: (r["price_per_hour"] is None,
                                       r["price_per_hour"] or 0.0, r["id"]))


def _gpu_key(text: str) -> str:
    text = re.sub(r"^nvidia\s+", "", text.strip().lower())
    return re.sub(r"[^a-z0-9]+", "", text)


def _gpu_price(gpu: dict) -> float:
    cents = (gpu.get("pricing") or {}).get("onDemand")
    return float(cents) / 100.0 if cents is not None else 0.0


def _gpu_plan(s: Settings, gpu: dict, by_id: dict[str, dict]) -> dict:
    if s.compute_plan:
        if not str(s.compute_plan).startswith("nf-gpu-") or s.compute_plan not in by_id:
            raise ConfigError([(f"{SECTION}.compute_plan {s.compute_plan!r} is not a "
                               "GPU plan")], hint="a GPU needs an nf-gpu-... plan; "
                              "leave compute_plan out to pick it from the GPU")
        return by_id[s.compute_plan]
    wanted = f"nf-gpu-{gpu['id']}-{s.gpu_count}g"
    if wanted not in by_id:
        offered = sorted(p for p in by_id if p.startswith(f"nf-gpu-{gpu['id']}-"))
        raise ConfigError([f"no plan {wanted} for {s.gpu_count}x {gpu['id']}"],
                          hint="plans for it: " + (", ".join(offered) or "none"))
    return by_id[wanted]


def _compute_plan(s: Settings, by_id: dict[str, dict]) -> tuple[dict, Note]:
    need_cpu, need_mb = float(s.cpu or 0), float(s.memory_gb or 0) * 1024
    if s.compute_plan:
        plan = by_id.get(s.compute_plan)
        if plan is None:
            raise ConfigError([f"{SECTION}.compute_plan {s.compute_plan!r} is unknown"],
                              hint="plans: " + ", ".join(sorted(by_id)))
        if plan["cpuResource"] < need_cpu or plan["ramResource"] < need_mb:
            raise ConfigError([(f"{s.compute_plan} ({_size(plan)}) is smaller than the "
                               f"resources asked ({s.cpu} vCPU, {s.memory_gb} GB)")],
                              hint="raise compute_plan or drop cpu/memory_gb")
        return plan, Note("compute_plan", "honoured", _size(plan))
    if not need_cpu and not need_mb:
        plan = by_id[DEFAULT_PLAN]
        return plan, Note("compute_plan", "mapped", f"none given: {plan['id']} "
                          f"({_size(plan)}, ${plan['amountPerHour']}/h)")
    fits = [p for p in by_id.values() if p["id"].startswith("nf-compute-")
            and p["cpuResource"] >= need_cpu and p["ramResource"] >= need_mb]
    if not fits:
        raise ConfigError([f"no Northflank plan has {s.cpu} vCPU and {s.memory_gb} GB"],
                          hint="the largest is nf-compute-2000-40 (20 vCPU, 40 GB)")
    plan = min(fits, key=lambda p: (p["amountPerHour"], p["cpuResource"],
                                    p["ramResource"]))
    return plan, Note("resources", "mapped", f"cpu {s.cpu}, memory_gb {s.memory_gb} -> "
                      f"{plan['id']} ({_size(plan)}, ${plan['amountPerHour']}/h)")


def _size(plan: dict) -> str:
    return f"{plan['cpuResource']:g} vCPU, {plan['ramResource'] / 1024:g} GB"


# --- request bodies (checked against the SDK's TypedDicts in the tests) ------
def project_body(s: Settings) -> dict[str, Any]:
    return {"name": s.project, "region": s.region,
            "description": "sindri-jupyter environments"}


def service_body(s: Settings, choice: Choice, marker: str) -> dict[str, Any]:
    """CreateServiceDeploymentRequest for an external image with SSH enabled."""
    deployment: dict[str, Any] = {
        "instances": s.instances, "external": {"imagePath": s.image},
        "ssh": {"enabled": True}}
    if not s.ports:  # a development box: keep it up for the kernel
        deployment["docker"] = {"configType": "customCommand",
                                "customCommand": KEEP_ALIVE}
    if choice.gpu is not None:
        deployment["gpu"] = {"enabled": True, "configuration": {
            "gpuType": choice.gpu["id"], "gpuCount": s.gpu_count, "timesliced": False}}
    if s.disk_gb:
        deployment["storage"] = {"ephemeralStorage": {"storageSize": int(s.disk_gb) * 1024}}
    body: dict[str, Any] = {
        "name": s.service, "description": names.describe(s.env_name, marker),
        "tags": [names.OWNER_TAG, names.marker_tag(marker)],
        "billing": {"deploymentPlan": choice.plan["id"]},
        "deployment": deployment,
        "runtimeEnvironment": {**s.env, "SINDRI_MARKER": marker,
                               "SINDRI_ENV": s.env_name}}
    if s.ports:
        body["ports"] = [dict(p) for p in s.ports]
    if s.health_checks:
        body["healthChecks"] = [dict(h) for h in s.health_checks]
    if s.autoscaling:
        body["autoscaling"] = s.autoscaling
    return body


def identity_body(name: str, public_key: str, project_id: str,
                  marker: str) -> dict[str, Any]:
    """AddSshIdentitiesRequest: one key, usable only on this environment's service."""
    return {"name": name, "description": "sindri-jupyter environment key",
            "sshPublicKeys": [{"key": public_key.strip()}],
            "restrictions": {
                "projects": {"enabled": True, "items": [project_id]},
                "tags": {"enabled": True, "items": [names.marker_tag(marker)],
                         "matchCondition": "or"}}}


def notes_for(s: Settings, choice: Choice) -> tuple[Note, ...]:
    notes = list(s.notes) + list(choice.notes)
    notes.append(Note("region", "honoured", f"project {s.project} in {s.region}"))
    notes.append(Note("instances", "honoured", str(s.instances)))
    if s.autoscaling:
        h = s.autoscaling["horizontal"]
        notes.append(Note("auto_scaling", "mapped", f"autoscaling.horizontal "
                          f"{h['minReplicas']}-{h['maxReplicas']} at "
                          f"{h['cpu']['thresholdPercentage']}% CPU"))
    else:
        notes.append(Note("auto_scaling", "honoured", "disabled: not sent"))
    notes.append(Note("ports", "mapped", ", ".join(
        f"{p['name']}:{p['internalPort']}/{p['protocol']}" for p in s.ports)
        or f"none; SSH is opened by Northflank; command {KEEP_ALIVE!r}"))
    if s.health_checks:
        notes.append(Note("health_checks", "mapped", f"{len(s.health_checks)} probe(s)"))
    if s.disk_gb:
        notes.append(Note("disk_gb", "mapped", f"ephemeral storage {s.disk_gb} GB"))
    return tuple(notes)
