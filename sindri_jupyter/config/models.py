"""pydantic models of sindri.yaml: the single source of truth for its keys.

The JSON schema in ``schemas/sindri.schema.json`` is generated from these models
(``sindri config schema``); a test fails when the file is stale. Keys are
snake_case; the camelCase spellings of the older Rust tool are accepted by the
loader (see ``loader.CAMEL_ALIASES``), not here, so the schema stays canonical.

Every field declares its unit in its description. A field a provider cannot
honour is listed in that section's ``NOT_APPLICABLE`` with the reason, so that
``sindri config validate`` and ``deploy --dry-run`` can report it.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SUPPORTED_MAJOR = 3
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_default=False)

    # key -> why the provider cannot honour it (reported, never dropped silently)
    NOT_APPLICABLE: ClassVar[dict[str, str]] = {}
    # key -> why it is refused: features the provider's API no longer has
    RETIRED: ClassVar[dict[str, str]] = {}


class GpuSpec(_Section):
    type: str = Field(description="GPU model, catalog id or display name, e.g. 'RTX 4090'")
    count: int = Field(1, ge=1, le=16, description="number of GPUs")


class Resources(_Section):
    gpu: GpuSpec | None = Field(None, description="GPU request; omit for CPU only")
    cpu: float | None = Field(None, gt=0, description="vCPUs")
    memory_gb: float | None = Field(None, gt=0, description="memory in GB")
    disk_gb: int | None = Field(None, ge=1, description="container disk in GB")


class Deployment(_Section):
    provider: str = Field("local", description="runpod | northflank | ssh | local")
    image: str | None = Field(None, description="container image (cloud providers)")
    resources: Resources = Field(default_factory=Resources)
    env: dict[str, str] = Field(
        default_factory=dict, description="environment variables for the kernel"
    )
    idle_stop_minutes: float | None = Field(
        None, gt=0, description="stop when the kernel and GPU are idle this many minutes"
    )
    budget_usd: float | None = Field(
        None, gt=0, description="hard cap on accrued cost, in US dollars"
    )
    max_lifetime_hours: float | None = Field(
        None, gt=0, description="stop after this many hours whatever the activity"
    )


_NO_SPOT = ("spot (interruptible) pods were removed from RunPod's API in 2026; "
            "use cloud_type SECURE or COMMUNITY")
RETIRED_VALUES = {"SPOT": _NO_SPOT, "INTERRUPTIBLE": _NO_SPOT}


class RunPodSection(_Section):
    RETIRED: ClassVar[dict[str, str]] = {
        "interruptible": _NO_SPOT,
        "spot": _NO_SPOT,
        "bid_per_gpu": _NO_SPOT,
        "support_public_ip": "REST v2 has no public-IP setting; SECURE cloud always "
        "has a public IP (remove the key)",
        "min_vcpu_count": "REST v2 derives vCPUs from the GPU type (remove the key)",
        "min_memory_in_gb": "REST v2 derives memory from the GPU type (remove the key)",
    }
    NOT_APPLICABLE: ClassVar[dict[str, str]] = {
        "compute_plan": "RunPod GPU pods have no compute plan: vCPU and memory come "
        "with the GPU type and count (set gpu_type_id and gpu_count instead)",
        "docker_args": "RunPod takes no Docker runtime flags; shared memory and "
        "other runtime settings are fixed by RunPod per machine",
    }

    name: str | None = Field(None, description="pod name; default: the environment name")
    gpu_type_id: str | None = Field(None, description="RunPod GPU id or display name")
    gpu_count: int | None = Field(None, ge=1, le=16, description="GPUs per pod")
    gpu_fallbacks: list[str] = Field(
        default_factory=list, description="GPU types to try in order when out of capacity"
    )
    cloud_type: Literal["SECURE", "COMMUNITY"] = Field(
        "SECURE", description="SECURE or COMMUNITY cloud"
    )
    volume_in_gb: int | None = Field(None, ge=0, description="pod volume in GB")
    container_disk_in_gb: int | None = Field(None, ge=1, description="container disk, GB")
    volume_mount_path: str | None = Field(None, description="where the volume mounts")
    network_volume_id: str | None = Field(None, description="network volume to attach")
    data_center_ids: list[str] = Field(
        default_factory=list, description="allowed data centers, in order of preference"
    )
    ports: list[str] = Field(
        default_factory=list, description="extra ports, e.g. '8888/http'; 22/tcp is added"
    )
    compute_plan: str | None = Field(None, description="not applicable to RunPod")
    docker_args: str | None = Field(None, description="not applicable to RunPod")
    python: str = Field(
        "python3", description="Python in the image that runs the kernel (without "
        "ipykernel, it is installed into a private venv)"
    )


class AutoScaling(_Section):
    enabled: bool = Field(False, description="horizontal autoscaling on or off")
    min_instances: int = Field(1, ge=1, description="lowest instance count")
    max_instances: int = Field(3, ge=1, description="highest instance count")
    target_cpu_percent: int = Field(70, ge=1, le=100, description="CPU % to scale at")

    @model_validator(mode="after")
    def _bounds(self) -> "AutoScaling":
        if self.max_instances < self.min_instances:
            raise ValueError("max_instances must be at least min_instances")
        return self


class NorthflankSection(_Section):
    project_name: str | None = Field(None, description="project; created when missing")
    service_name: str | None = Field(None, description="service; default: the env name")
    region: str = Field("us-central", description="Northflank region id")
    compute_plan: str | None = Field(None, description="deployment plan, e.g. nf-compute-50")
    gpu_type: str | None = Field(None, description="GPU type; deployment.resources.gpu also works")
    instances: int = Field(1, ge=0, description="number of instances")
    auto_scaling: AutoScaling = Field(default_factory=AutoScaling)
    ports: list[int] = Field(default_factory=list, description="extra ports to expose")
    python: str = Field(
        "python3", description="Python in the image that runs the kernel (without "
        "ipykernel, it is installed into a private venv)"
    )


class SSHSection(_Section):
    host: str = Field(description="host name or address, or a Host alias of ~/.ssh/config")
    port: int = Field(22, ge=1, le=65535, description="SSH port")
    user: str | None = Field(None, description="login user; default from ~/.ssh/config")
    identity_file: str | None = Field(None, description="private key path (~ allowed)")
    python: str = Field("python3", description="Python on the host that runs the kernel")


class LocalSection(_Section):
    python: str | None = Field(
        None, description="interpreter for the kernel; default: the Python running sindri"
    )
    workdir: str | None = Field(
        None, description="working directory; default SINDRI_HOME/envs/NAME/work"
    )


class Providers(_Section):
    runpod: RunPodSection | None = None
    northflank: NorthflankSection | None = None
    ssh: SSHSection | None = None
    local: LocalSection | None = None


class SindriConfig(_Section):
    """A whole sindri.yaml."""

    name: str = Field(
        description="environment name; provider resource names derive from it",
        json_schema_extra={"pattern": NAME_PATTERN},
    )
    version: str = Field("3.1.0", description="config format version, a string")
    deployment: Deployment = Field(default_factory=Deployment)
    providers: Providers = Field(default_factory=Providers)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.match(NAME_PATTERN, value):
            raise ValueError(f"'{value}' is not a usable name: start with a letter or "
                             "digit, then letters, digits, '.', '_' or '-' (63 at most)")
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not re.match(r"^\d+(\.\d+){0,2}$", value):
            raise ValueError(f"'{value}' is not a version like 3.1.0")
        if value.split(".", 1)[0] != str(SUPPORTED_MAJOR):
            raise ValueError(f"config format version '{value}' is not supported; "
                             f"this release reads {SUPPORTED_MAJOR}.x")
        return value

    @property
    def provider(self) -> str:
        return self.deployment.provider

    def section(self, provider: str | None = None):
        """The provider's section, or its defaults when the file has none."""
        name = provider or self.provider
        found = getattr(self.providers, name, None)
        if found is not None:
            return found
        if name == "local":
            return LocalSection()
        return None


def json_schema() -> dict:
    schema = SindriConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "sindri.yaml"
    return schema
