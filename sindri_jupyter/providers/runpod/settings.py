"""The RunPod section of the config, read into Settings, and the create body.

``settings_from`` reads any object shaped like ``SindriConfig`` (attributes
listed in ``provider``'s module docstring); ``pod_body`` builds the closed
CreatePodRequest; ``notes_for`` says how each key was treated, for the plan.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sindri_jupyter.config.models import RETIRED_VALUES, RunPodSection
from sindri_jupyter.core.types import Handle, Note
from sindri_jupyter.errors import ConfigError

MARKER_ENV = "SINDRI_MARKER"
NAME_ENV = "SINDRI_ENV"
# One source of truth for both tables: the config model.
NOT_APPLICABLE = RunPodSection.NOT_APPLICABLE
RETIRED = RunPodSection.RETIRED


@dataclasses.dataclass(frozen=True)
class Settings:
    """The RunPod section with defaults applied; see the module docstring."""

    pod_name: str
    image: str
    env: dict[str, str]
    gpu: str
    gpu_count: int
    fallbacks: tuple[str, ...]
    cloud: str
    disk: int | None
    volume_gb: int | None
    mount_path: str
    network_volume_id: str | None
    data_center_ids: tuple[str, ...]
    ports: tuple[str, ...]
    python: str = "python3"

    def kernel_data(self, env_name: str) -> dict[str, str]:
        """Where the environment kernel runs on the pod (``remote.hosts`` reads it).

        The kernel starts in the volume's mount path, where the user's files
        persist; its connection file (with the HMAC key) and logs stay in a 0700
        folder on the container disk, never on a volume another pod may mount.
        """
        return {"python": self.python, "cwd": self.mount_path,
                "host_workdir": f"~/.sindri/envs/{env_name}"}


def settings_from(config: Any) -> Settings:
    """Read the config object (any attributes-bearing object) into Settings."""
    section = getattr(getattr(config, "providers", None), "runpod", None)
    deployment = getattr(config, "deployment", None)
    resources = getattr(deployment, "resources", None)
    want_gpu = getattr(resources, "gpu", None)
    opt = lambda key, default=None: _attr(section, key, default)  # noqa: E731
    _refuse_retired(section)
    cloud = str(opt("cloud_type") or "SECURE").upper()
    if cloud not in ("SECURE", "COMMUNITY"):
        raise ConfigError(
            [f"providers.runpod.cloud_type: {cloud!r} is not available on RunPod"],
            hint=RETIRED_VALUES.get(cloud, "use SECURE or COMMUNITY"),
        )
    gpu = opt("gpu_type_id") or getattr(want_gpu, "type", None)
    if not gpu:
        raise ConfigError(["providers.runpod.gpu_type_id is not set"],
                          hint="set it, e.g. gpu_type_id: RTX 4090 (`sindri gpus`)")
    image = getattr(deployment, "image", None)
    if not image:
        raise ConfigError(["deployment.image is not set"],
                          hint="RunPod pods need an image, e.g. "
                          "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404")
    volume = opt("volume_in_gb")
    if volume and volume < 10:
        raise ConfigError([f"providers.runpod.volume_in_gb: {volume} is below 10"],
                          hint="RunPod volumes are at least 10 GB; use 0 for none")
    return Settings(
        pod_name=str(opt("name") or getattr(config, "name", "sindri")),
        image=str(image),
        env=dict(getattr(deployment, "env", None) or {}),
        gpu=str(gpu),
        gpu_count=int(opt("gpu_count") or getattr(want_gpu, "count", None) or 1),
        fallbacks=tuple(opt("gpu_fallbacks") or ()),
        cloud=cloud,
        disk=opt("container_disk_in_gb") or getattr(resources, "disk_gb", None),
        volume_gb=volume or None,
        mount_path=str(opt("volume_mount_path") or "/workspace"),
        network_volume_id=opt("network_volume_id"),
        data_center_ids=tuple(opt("data_center_ids") or ()),
        ports=tuple(opt("ports") or ()),
        # Read when the section has the key (RunPod images bring python3).
        python=str(opt("python") or "python3"),
    )


def _attr(section: Any, key: str, default: Any = None) -> Any:
    value = getattr(section, key, None) if section is not None else None
    return default if value is None else value


def _refuse_retired(section: Any) -> None:
    used = [k for k in RETIRED if _attr(section, k)]
    if used:
        raise ConfigError([f"providers.runpod.{k}: {RETIRED[k]}" for k in used],
                          hint="remove these keys; use cloud_type SECURE or COMMUNITY")


def pod_body(s: Settings, gpu_id: str, handle: Handle, env_name: str) -> dict:
    """The CreatePodRequest for one GPU choice; only fields v2 knows."""
    env = dict(s.env)
    env.update({MARKER_ENV: handle.marker, NAME_ENV: env_name})
    if handle.data.get("public_key"):
        env["PUBLIC_KEY"] = str(handle.data["public_key"])
    body: dict[str, Any] = {
        "name": f"{s.pod_name}-{handle.marker}",
        "image": s.image,
        "gpu": {"id": gpu_id, "count": s.gpu_count},  # always send count (2026-08)
        "cloud": s.cloud,
        "ports": list(dict.fromkeys([*s.ports, "22/tcp"])),
        "env": env,
    }
    if s.disk:
        body["disk"] = int(s.disk)
    if s.data_center_ids:
        body["dataCenterIds"] = list(s.data_center_ids)
    if s.network_volume_id:
        body["mounts"] = {"network": [{"volumeId": s.network_volume_id,
                                       "path": s.mount_path}]}
    elif s.volume_gb:
        body["mounts"] = {"persistent": {"size": int(s.volume_gb), "path": s.mount_path}}
    return body


def notes_for(s: Settings, section: Any, gpu_id: str) -> tuple[Note, ...]:
    """How each key of the section is treated, with ``gpu_id`` as resolved."""
    notes = [
        Note("name", "mapped", f"pod name {s.pod_name}-<marker>"),
        Note("gpu_type_id", "mapped", f"gpu.id = {gpu_id!r} (from {s.gpu!r})"),
        Note("gpu_count", "mapped", f"gpu.count = {s.gpu_count}"),
        Note("cloud_type", "mapped", f"cloud = {s.cloud}"),
        Note("ports", "mapped", "ports = " + ", ".join(dict.fromkeys([*s.ports,
                                                                      "22/tcp"]))),
    ]
    if s.disk:
        notes.append(Note("container_disk_in_gb", "mapped", f"disk = {s.disk} GB"))
    if s.network_volume_id:
        notes.append(Note("network_volume_id", "mapped",
                          f"mounts.network at {s.mount_path}"))
        if s.volume_gb:
            notes.append(Note("volume_in_gb", "not applicable",
                              "a pod has one mount: the network volume wins"))
    elif s.volume_gb:
        notes.append(Note("volume_in_gb", "mapped", f"mounts.persistent {s.volume_gb} "
                          f"GB at {s.mount_path} (host-local, lost on destroy)"))
    if s.data_center_ids:
        notes.append(Note("data_center_ids", "honoured",
                          "RunPod places the pod only there (enforced)"))
    if s.fallbacks:
        notes.append(Note("gpu_fallbacks", "honoured",
                          "tried in order when out of capacity"))
    for key, why in NOT_APPLICABLE.items():
        if _attr(section, key):
            notes.append(Note(key, "not applicable", why))
    return tuple(notes)
