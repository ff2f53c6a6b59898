"""Choosing a RunPod GPU: names people type, and what to offer when none is free.

``resolve`` accepts a catalog id (``NVIDIA RTX A6000``) or display name
(``RTX A6000``) in any case, with spaces, underscores or dashes
(``NVIDIA_RTX_A6000``, ``rtx a6000``, ``rtx-4090``). An unknown name fails
before any create, naming the nearest catalog entries.

``alternatives`` turns live availability into options after a capacity 400:
the same GPU in the other cloud type or in other data centers, then similar
GPUs by VRAM and price.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from sindri_jupyter.errors import ConfigError
from sindri_jupyter.providers.runpod.models import GpuType

_SEPARATORS = re.compile(r"[\s_\-]+")
# Words people leave out: "RTX 4090" names "NVIDIA GeForce RTX 4090".
_VENDOR_WORDS = {"nvidia", "geforce", "amd", "tesla"}
_STOCKED = ("LOW", "MEDIUM", "HIGH")


def normalize(name: str) -> str:
    return _SEPARATORS.sub(" ", name).strip().lower()


def _loose(name: str) -> str:
    return " ".join(w for w in normalize(name).split() if w not in _VENDOR_WORDS)


def resolve(name: str, catalog: Sequence[GpuType], *, where: str = "gpu") -> GpuType:
    """The catalog entry ``name`` means, or a ConfigError with the nearest names."""
    wanted = normalize(name)
    for match in (
        lambda g: g.id == name,
        lambda g: normalize(g.id) == wanted or normalize(g.name) == wanted,
    ):
        found = [g for g in catalog if match(g)]
        if len(found) == 1:
            return found[0]
    loose = [g for g in catalog if _loose(wanted) in (_loose(g.id), _loose(g.name))]
    if len(loose) == 1:
        return loose[0]
    if len(loose) > 1:
        raise ConfigError(
            [f"{where}: {name!r} matches several RunPod GPUs"],
            hint="use the full id, one of: " + ", ".join(g.id for g in loose),
        )
    raise ConfigError([f"{where}: {name!r} is not a RunPod GPU type"],
                      hint=_nearest_hint(name, catalog))


def _nearest_hint(name: str, catalog: Sequence[GpuType]) -> str:
    by_key: dict[str, str] = {}
    for g in catalog:
        by_key[normalize(g.id)] = g.id
        by_key[normalize(g.name)] = g.id
    close = difflib.get_close_matches(normalize(name), list(by_key), n=6, cutoff=0.4)
    names = list(dict.fromkeys(by_key[c] for c in close))[:4]
    if names:
        return "nearest catalog names: " + ", ".join(names) + \
            " (`sindri gpus --provider runpod` lists all)"
    return "run `sindri gpus --provider runpod` to list the catalog"


def _stocked(gpu: GpuType) -> bool:
    return (gpu.availability or "NONE") in _STOCKED


def _price_text(gpu: GpuType, cloud: str, count: int) -> str:
    price = gpu.price(cloud)
    return f"${price * count:.2f}/h" if price is not None else "price unknown"


def alternatives(
    wanted: GpuType,
    *,
    cloud: str,
    count: int,
    same_cloud: Sequence[GpuType],
    other_cloud: Sequence[GpuType],
    pinned_dcs: Sequence[str] = (),
    limit: int = 3,
) -> list[str]:
    """Options to offer after "no capacity", best first, as short sentences.

    ``same_cloud`` and ``other_cloud`` are the catalog with availability for
    ``count`` GPUs in the asked cloud and in the other one.
    """
    other = "COMMUNITY" if cloud == "SECURE" else "SECURE"
    options: list[str] = []
    twin = next((g for g in other_cloud if g.id == wanted.id), None)
    if twin is not None and twin.offered(other) and _stocked(twin):
        options.append(f"{wanted.id} x{count} on {other} cloud "
                       f"({twin.availability}, {_price_text(twin, other, count)})")
    fresh = next((g for g in same_cloud if g.id == wanted.id), wanted)
    free_dcs = [d for d in fresh.data_centers
                if d.availability in _STOCKED and d.id not in set(pinned_dcs)]
    if pinned_dcs and free_dcs:
        options.append(f"{wanted.id} x{count} on {cloud} cloud in data center "
                       + " or ".join(d.id for d in free_dcs[:limit]))
    for gpu in similar(wanted, same_cloud, cloud=cloud, limit=limit):
        options.append(f"{gpu.id} ({gpu.memory} GB) x{count} on {cloud} cloud "
                       f"({gpu.availability}, {_price_text(gpu, cloud, count)})")
    return options


def similar(
    wanted: GpuType, catalog: Sequence[GpuType], *, cloud: str, limit: int = 3
) -> list[GpuType]:
    """Stocked GPUs with at least the VRAM asked for, nearest in price first."""
    base = wanted.price(cloud) or 0.0
    pool = [
        g for g in catalog
        if g.id != wanted.id and g.offered(cloud) and _stocked(g)
        and g.memory >= wanted.memory and g.price(cloud) is not None
    ]
    pool.sort(key=lambda g: (abs((g.price(cloud) or 0.0) - base), g.memory))
    return pool[:limit]


def table(secure: Sequence[GpuType], community: Sequence[GpuType] = (), *,
          min_vram: float = 0) -> list[dict]:
    """Rows for ``sindri gpus``, cheapest first.

    ``secure`` and ``community`` are the catalog with availability asked for
    each cloud; ``price_per_hour`` is the SECURE (on-demand) price of one GPU,
    or the COMMUNITY price for a GPU only offered there.
    """
    in_community = {g.id: g for g in community}
    rows = []
    for g in secure:
        if g.memory < min_vram:
            continue
        twin = in_community.get(g.id, g)
        secure_price = g.price_secure if g.secure else None
        community_price = twin.price_community if twin.community else None
        rows.append({
            "provider": "runpod", "id": g.id, "name": g.name, "vram_gb": g.memory,
            "price_per_hour": secure_price if secure_price is not None
            else community_price,
            "cloud": "SECURE" if secure_price is not None else "COMMUNITY",
            "community_price_per_hour": community_price,
            "availability": (g.availability if g.secure else twin.availability)
            or "unknown",
            "community_availability": (twin.availability if twin.community
                                       else None),
        })
    return sorted(rows, key=lambda r: (r["price_per_hour"] is None,
                                       r["price_per_hour"] or 0.0, r["id"]))
