"""Typed views of RunPod REST v2 answers, and the closed request bodies.

Parsing is tolerant on purpose: ``runtime`` may be null, ``{}`` or partial,
optional blocks may be missing, and enum values we do not know are kept as
text (the provider maps them to ``State.UNKNOWN``). Every view keeps ``raw``.

Request bodies are closed in the real API (an unknown field is a 422), so the
set of fields each body may carry is declared here once, from the vendor spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Fields the spec allows in each request body (CreatePodRequest and friends).
CREATE_POD_FIELDS = frozenset({
    "name", "image", "args", "disk", "env", "ports", "registry", "cloud", "cpu",
    "dataCenterIds", "globalNetworking", "gpu", "mounts", "startJupyter",
    "startSsh", "templateId",
})
UPDATE_POD_FIELDS = frozenset({
    "name", "image", "args", "disk", "env", "ports", "registry", "mounts",
    "locked", "globalNetworking", "templateId",
})
CREATE_GPU_FIELDS = frozenset({"id", "count", "allowedCudaVersions", "minCudaVersion"})
CREATE_VOLUME_FIELDS = frozenset({"name", "size", "dataCenter", "type"})
POD_ACTIONS = ("start", "stop", "restart", "terminate")

# v1 / GraphQL spellings people still send, and what v2 wants instead.
V1_FIELDS = {
    "imageName": "image",
    "containerDiskInGb": "disk",
    "volumeInGb": "mounts.persistent.size",
    "volumeMountPath": "mounts.persistent.path or mounts.network[0].path",
    "networkVolumeId": "mounts.network[0].volumeId",
    "gpuTypeId": "gpu.id",
    "gpuTypeIds": "gpu.id (one type; try fallbacks one create at a time)",
    "gpuCount": "gpu.count",
    "cloudType": "cloud",
    "dockerArgs": "args",
    "dockerStartCmd": "args",
    "containerRegistryAuthId": "registry",
    "allowedCudaVersions": "gpu.allowedCudaVersions",
    "dataCenterId": "dataCenterIds",
}
RETIRED_FIELDS = {
    "interruptible": "spot (interruptible) pods were removed from RunPod's API in 2026",
    "bidPerGpu": "spot (interruptible) pods were removed from RunPod's API in 2026",
    "supportPublicIp": "REST v2 has no public-IP knob; use cloud SECURE for direct SSH",
    "countryCode": "REST v2 places pods by dataCenterIds only",
    "minVcpuCount": "REST v2 derives vCPUs from the GPU type",
    "minMemoryInGb": "REST v2 derives memory from the GPU type",
    "dockerEntrypoint": "REST v2 has no entrypoint override; use args",
}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class PortMapping:
    """One entry of ``runtime.ports``: a private port and how it is published."""

    private: int | None
    public: int | None
    type: str
    ip: str | None

    @classmethod
    def from_json(cls, data: Any) -> "PortMapping":
        data = _dict(data)
        return cls(
            private=data.get("private"),
            public=data.get("public"),
            type=str(data.get("type") or ""),
            ip=data.get("ip"),
        )


@dataclass(frozen=True)
class SshEndpoint:
    host: str
    port: int
    username: str

    @classmethod
    def from_json(cls, data: Any) -> "SshEndpoint | None":
        data = _dict(data)
        if not data.get("host") or not isinstance(data.get("port"), int):
            return None
        return cls(str(data["host"]), int(data["port"]), str(data.get("username") or ""))


@dataclass(frozen=True)
class Pod:
    """A pod as GET /v2/pods/{id} describes it."""

    id: str
    name: str
    status: str
    actions: tuple[str, ...] = ()
    image: str = ""
    env: dict[str, str] = field(default_factory=dict)
    ports: tuple[str, ...] = ()
    gpu_id: str | None = None
    gpu_count: int = 0
    cloud: str | None = None
    data_center_id: str | None = None
    cost: float | None = None
    runtime_ports: tuple[PortMapping, ...] = ()
    ssh_direct: SshEndpoint | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> "Pod":
        data = _dict(data)
        runtime = _dict(data.get("runtime"))  # null, {} and partial all allowed
        gpu = _dict(data.get("gpu"))
        cost = data.get("cost")
        return cls(
            id=str(data.get("id") or ""),
            name=str(data.get("name") or ""),
            status=str(data.get("status") or ""),
            actions=tuple(str(a) for a in _list(data.get("actions"))),
            image=str(data.get("image") or ""),
            env={str(k): str(v) for k, v in _dict(data.get("env")).items()},
            ports=tuple(str(p) for p in _list(data.get("ports"))),
            gpu_id=gpu.get("id"),
            gpu_count=int(gpu.get("count") or 0),
            cloud=data.get("cloud"),
            data_center_id=data.get("dataCenterId"),
            cost=float(cost) if isinstance(cost, (int, float)) else None,
            runtime_ports=tuple(
                PortMapping.from_json(p) for p in _list(runtime.get("ports"))
            ),
            ssh_direct=SshEndpoint.from_json(_dict(data.get("ssh")).get("direct")),
            raw=data,
        )


@dataclass(frozen=True)
class DataCenterStock:
    id: str
    name: str
    availability: str


@dataclass(frozen=True)
class GpuType:
    """A catalog GPU; availability fields are None unless asked for."""

    id: str
    name: str
    memory: int
    secure: bool
    community: bool
    price_secure: float | None
    price_community: float | None
    max_secure: int = 0
    max_community: int = 0
    availability: str | None = None
    data_centers: tuple[DataCenterStock, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def price(self, cloud: str) -> float | None:
        return self.price_community if cloud == "COMMUNITY" else self.price_secure

    def offered(self, cloud: str) -> bool:
        return self.community if cloud == "COMMUNITY" else self.secure

    @classmethod
    def from_json(cls, data: Any) -> "GpuType":
        data = _dict(data)
        price, most = _dict(data.get("price")), _dict(data.get("maxCount"))
        stock = tuple(
            DataCenterStock(str(d.get("id")), str(d.get("name") or d.get("id")),
                            str(d.get("availability") or "NONE").upper())
            for d in map(_dict, _list(data.get("dataCenters")))
        )
        availability = data.get("availability")
        return cls(
            id=str(data.get("id") or ""),
            name=str(data.get("name") or data.get("id") or ""),
            memory=int(data.get("memory") or 0),
            secure=bool(data.get("secure")),
            community=bool(data.get("community")),
            price_secure=_float(price.get("secure")),
            price_community=_float(price.get("community")),
            max_secure=int(most.get("secure") or 0),
            max_community=int(most.get("community") or 0),
            availability=str(availability).upper() if availability else None,
            data_centers=stock,
            raw=data,
        )


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


@dataclass(frozen=True)
class NetworkVolume:
    id: str
    name: str
    size: int
    data_center: str
    type: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> "NetworkVolume":
        data = _dict(data)
        return cls(str(data.get("id") or ""), str(data.get("name") or ""),
                   int(data.get("size") or 0), str(data.get("dataCenter") or ""),
                   data.get("type"))


@dataclass(frozen=True)
class BillingRecord:
    pod_id: str
    start: str
    end: str
    total: float

    @classmethod
    def from_json(cls, data: Any) -> "BillingRecord":
        data = _dict(data)
        return cls(str(data.get("podId") or ""), str(data.get("startTime") or ""),
                   str(data.get("endTime") or ""), float(data.get("totalAmount") or 0))


@dataclass(frozen=True)
class LogEvent:
    id: str
    ts: str
    source: str
    line: str


def parse_sse(text: str) -> list[LogEvent]:
    """Parse the log stream's ``id:`` / ``data:`` events (data is JSON)."""
    import json

    events, event_id, data_lines = [], "", []
    for line in text.splitlines() + [""]:
        if line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data_lines.append(line[5:].strip())
        elif not line and data_lines:
            try:
                payload = _dict(json.loads("\n".join(data_lines)))
            except ValueError:
                payload = {"line": "\n".join(data_lines)}
            events.append(LogEvent(event_id, str(payload.get("ts") or ""),
                                   str(payload.get("source") or ""),
                                   str(payload.get("line") or "")))
            event_id, data_lines = "", []
    return events


@dataclass(frozen=True)
class CpuType:
    id: str
    name: str
    price_per_vcpu: float | None
    availability: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> "CpuType":
        data = _dict(data)
        availability = data.get("availability")
        return cls(str(data.get("id") or ""), str(data.get("name") or ""),
                   _float(_dict(data.get("price")).get("securePerVcpu")),
                   str(availability).upper() if availability else None, data)


@dataclass(frozen=True)
class DataCenter:
    id: str
    name: str
    region: str
    volume_types: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> "DataCenter":
        data = _dict(data)
        return cls(str(data.get("id") or ""), str(data.get("name") or ""),
                   str(data.get("region") or "UNKNOWN"),
                   tuple(str(t) for t in _list(data.get("networkVolumeTypes"))), data)
