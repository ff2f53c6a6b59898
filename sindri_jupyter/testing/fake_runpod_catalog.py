"""Sample catalog and the request rules of the fake RunPod (see ``fake_runpod``).

Ids, names and the VRAM of the RTX 4090, 3090 and A6000 come from RunPod's
documentation; the other prices and sizes are illustrative, like the spec's own
examples. Tests must not treat them as RunPod's real prices.

The validators mirror REST v2: bodies are closed (unknown field -> 422 naming
it, like ``$: additional properties 'x' not allowed``) and cross-field rules
answer 400.
"""

from __future__ import annotations

import re
from typing import Any

CAPACITY_DETAIL = (
    "There are no longer any instances available with the requested "
    "specifications. Please refresh and try again."
)
# Starting a stopped pod whose host rented its GPUs out (reference section 2.4).
HOST_TAKEN_DETAIL = (
    "There are not enough free GPUs on the host machine to start this pod."
)

# id, name, VRAM GB, secure $/h, community $/h, max count, pool, data centers
_GPUS = [
    ("NVIDIA GeForce RTX 4090", "RTX 4090", 24, 0.69, 0.34, 8, "ADA_24",
     ["US-KS-2", "EU-RO-1", "CA-MTL-1"]),
    ("NVIDIA GeForce RTX 3090", "RTX 3090", 24, 0.46, 0.22, 8, "AMPERE_24",
     ["US-TX-3", "EU-SE-1"]),
    ("NVIDIA RTX A6000", "RTX A6000", 48, 0.49, 0.33, 8, "AMPERE_48",
     ["US-KS-2", "EU-RO-1", "US-TX-3"]),
    ("NVIDIA A40", "A40", 48, 0.44, 0.35, 8, "AMPERE_48", ["EU-SE-1", "US-KS-2"]),
    ("NVIDIA RTX A5000", "RTX A5000", 24, 0.27, 0.16, 8, "AMPERE_24", ["EU-RO-1"]),
    ("NVIDIA RTX A4000", "RTX A4000", 16, 0.25, 0.17, 8, "AMPERE_16", ["CA-MTL-1"]),
    ("NVIDIA  RTX A4500", "RTX A4500", 20, 0.25, 0.19, 4, None, ["US-TX-3"]),
    ("NVIDIA L40S", "L40S", 48, 0.86, 0.79, 8, "ADA_48_PRO", ["US-KS-2"]),
    ("NVIDIA RTX 6000 Ada Generation", "RTX 6000 Ada", 48, 0.77, 0.74, 8,
     "ADA_48_PRO", ["EU-RO-1"]),
    ("NVIDIA H100 80GB HBM3", "H100 SXM", 80, 2.69, 2.39, 8, "HOPPER_141",
     ["US-KS-2", "EU-SE-1"]),
    ("NVIDIA A100-SXM4-80GB", "A100 SXM", 80, 1.49, 1.39, 8, "AMPERE_80",
     ["US-TX-3"]),
]

DATA_CENTERS = [
    {"id": "US-KS-2", "name": "US Kansas 2", "region": "NORTH_AMERICA",
     "globalNetwork": True, "networkVolumeTypes": ["STANDARD", "HIGH_PERFORMANCE"],
     "compliance": ["SOC_2_TYPE_2", "ISO_IEC_27001"]},
    {"id": "US-TX-3", "name": "US Texas 3", "region": "NORTH_AMERICA",
     "globalNetwork": True, "networkVolumeTypes": ["STANDARD"],
     "compliance": ["SOC_2_TYPE_2"]},
    {"id": "EU-RO-1", "name": "EU Romania 1", "region": "EUROPE",
     "globalNetwork": False, "networkVolumeTypes": ["STANDARD"],
     "compliance": ["GDPR", "ISO_IEC_27001"]},
    {"id": "EU-SE-1", "name": "EU Sweden 1", "region": "EUROPE",
     "globalNetwork": False, "networkVolumeTypes": ["STANDARD"],
     "compliance": ["GDPR"]},
    {"id": "CA-MTL-1", "name": "CA Montreal 1", "region": "NORTH_AMERICA",
     "globalNetwork": False, "networkVolumeTypes": [], "compliance": []},
]

CPUS = [
    {"id": "cpu3c", "name": "Compute-Optimized", "group": "Gen 3",
     "vcpu": {"min": 2, "max": 32}, "ramGbPerVcpu": 2.0,
     "price": {"securePerVcpu": 0.04, "serverlessPerVcpu": 0.03}},
    {"id": "cpu5g", "name": "General Purpose", "group": "Gen 5",
     "vcpu": {"min": 2, "max": 64}, "ramGbPerVcpu": 4.0,
     "price": {"securePerVcpu": 0.05, "serverlessPerVcpu": 0.04}},
]


def gpu_catalog() -> dict[str, dict[str, Any]]:
    """The GPU catalog keyed by id, without availability fields."""
    out = {}
    for gid, name, mem, secure, community, most, pool, dcs in _GPUS:
        out[gid] = {
            "id": gid, "name": name, "pool": pool, "manufacturer": "NVIDIA",
            "memory": mem, "secure": True, "community": True,
            "price": {"secure": secure, "community": community},
            "maxCount": {"secure": most, "community": max(1, most // 2)},
            "_dcs": list(dcs),
        }
    return out


def dc_name(dc_id: str) -> str:
    return next((d["name"] for d in DATA_CENTERS if d["id"] == dc_id), dc_id)


# -- closed bodies --------------------------------------------------------------

_CREATE_POD = {
    "name", "image", "args", "disk", "env", "ports", "registry", "cloud", "cpu",
    "dataCenterIds", "globalNetworking", "gpu", "mounts", "startJupyter", "startSsh",
    "templateId",
}
_UPDATE_POD = {"name", "image", "args", "disk", "env", "ports", "registry", "mounts",
               "locked", "globalNetworking", "templateId"}
_GPU = {"id", "count", "allowedCudaVersions", "minCudaVersion"}
_MOUNTS = {"persistent", "network"}
_VOLUME = {"name", "size", "dataCenter", "type"}
SSH_KEY = re.compile(r"^(ssh|ecdsa|sk)-\S+ \S+([ \t][^\n\r]*)?$")


def _closed(body: Any, allowed: set[str], where: str, required=()) -> list[str]:
    if not isinstance(body, dict):
        return [f"{where}: expected object"]
    problems = [f"{where}: missing property '{k}'" for k in required if k not in body]
    extra = sorted(set(body) - allowed)
    if extra:
        names = ", ".join(f"'{k}'" for k in extra)
        problems.append(f"{where}: additional properties {names} not allowed")
    return problems


def create_pod_problems(body: Any) -> tuple[list[str], str | None]:
    """(422 schema errors, 400 rule detail) for a CreatePodRequest."""
    errors = _closed(body, _CREATE_POD, "$", required=("name",))
    if errors and not isinstance(body, dict):
        return errors, None
    if "image" not in body and "templateId" not in body:
        errors.append("$: missing property 'image'")
    gpu = body.get("gpu")
    if gpu is not None:
        errors += _closed(gpu, _GPU, "$.gpu", required=("id",))
        if isinstance(gpu, dict) and not isinstance(gpu.get("count", 1), int):
            errors.append("$.gpu.count: expected integer")
    mounts = body.get("mounts")
    if mounts is not None:
        errors += _closed(mounts, _MOUNTS, "$.mounts")
    if errors:
        return errors, None
    return [], _create_pod_rule(body)


def _create_pod_rule(body: dict) -> str | None:
    if ("gpu" in body) == ("cpu" in body):
        return "exactly one of gpu or cpu must be set"
    mounts = body.get("mounts") or {}
    if "persistent" in mounts and "network" in mounts:
        return "mounts.persistent and mounts.network are mutually exclusive"
    persistent = mounts.get("persistent")
    if persistent is not None and (persistent.get("size") or 0) < 10:
        return "mounts.persistent.size must be at least 10 GB"
    if body.get("cloud", "SECURE") not in ("SECURE", "COMMUNITY"):
        return "cloud must be SECURE or COMMUNITY"
    return None


def update_pod_problems(body: Any) -> list[str]:
    return _closed(body, _UPDATE_POD, "$")


def volume_problems(body: Any) -> list[str]:
    errors = _closed(body, _VOLUME, "$", required=("name", "size", "dataCenter"))
    if not errors and not (isinstance(body["size"], int) and 10 <= body["size"] <= 4096):
        errors.append("$.size: must be an integer from 10 to 4096")
    return errors
