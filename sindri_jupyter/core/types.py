"""Provider-neutral data that flows between the engine and the adapters."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class State(str, enum.Enum):
    """Observed state of an environment, the same for every provider."""

    PENDING = "PENDING"
    PROVISIONING = "PROVISIONING"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    FAILED = "FAILED"
    GONE = "GONE"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, value: object) -> "State":
        """Map any text to a State; what we do not know is UNKNOWN, never an error."""
        try:
            return cls(str(value).upper())
        except ValueError:
            return cls.UNKNOWN


@dataclass(frozen=True)
class Endpoint:
    """How to reach the environment: an SSH address, or this machine."""

    kind: str  # "ssh" or "local"
    host: str = "127.0.0.1"
    port: int = 22
    user: str = "root"
    # Provider-specific extras (a proxy command, a jump host): never secrets.
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Handle:
    """What the engine keeps to find the resource again.

    ``resource_id`` is the provider's id (empty before create answered);
    ``marker`` is our unique tag, sent with the create, so a lost answer can be
    resolved by looking the resource up.
    """

    provider: str
    name: str
    marker: str
    resource_id: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Observed:
    """One look at the resource, as ``Provider.get`` returns it."""

    state: State
    raw_state: str = ""
    endpoint: Endpoint | None = None
    message: str = ""
    price_per_hour: float | None = None


@dataclass(frozen=True)
class Note:
    """How one config key was treated: honoured, mapped, or not applicable."""

    key: str
    treatment: str  # "honoured" | "mapped" | "not applicable"
    detail: str = ""


@dataclass(frozen=True)
class Plan:
    """What a deploy would create, shown before anything is created."""

    provider: str
    name: str
    summary: str
    gpu: str | None = None
    gpu_count: int = 0
    price_per_hour: float | None = None
    availability: str | None = None
    notes: tuple[Note, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Capabilities:
    gpu: bool = False
    pause: bool = False
    volumes: bool = False
    autoscaling: bool = False


@dataclass(frozen=True)
class Check:
    """One line of ``sindri doctor``."""

    name: str
    ok: bool
    detail: str = ""
    fix: str | None = None
