"""The fake Northflank's catalogue: plans, GPUs and regions.

The June 2026 snapshot of the reference (northflank-api.md, sections 2.1-2.3);
GPU plan CPU/memory and prices beyond the per-GPU prices there are made up.
"""

from __future__ import annotations

from typing import Any

# --- catalogue: the June 2026 snapshot of the reference, sections 2.1-2.3 ---
COMPUTE_PLANS = [  # id, vCPU, RAM MB, $/h
    ("nf-compute-10", 0.1, 256, 0.004), ("nf-compute-20", 0.2, 512, 0.008),
    ("nf-compute-50", 0.5, 1024, 0.017), ("nf-compute-100-1", 1, 1024, 0.025),
    ("nf-compute-100-2", 1, 2048, 0.033), ("nf-compute-100-4", 1, 4096, 0.05),
    ("nf-compute-200", 2, 4096, 0.067), ("nf-compute-200-8", 2, 8192, 0.1),
    ("nf-compute-200-16", 2, 16384, 0.167), ("nf-compute-400", 4, 8192, 0.133),
    ("nf-compute-400-16", 4, 16384, 0.2), ("nf-compute-800-8", 8, 8192, 0.2),
    ("nf-compute-800-16", 8, 16384, 0.267), ("nf-compute-800-24", 8, 24576, 0.333),
    ("nf-compute-800-32", 8, 32768, 0.4), ("nf-compute-800-40", 8, 40960, 0.467),
    ("nf-compute-1200-24", 12, 24576, 0.4), ("nf-compute-1600-32", 16, 32768, 0.533),
    ("nf-compute-2000-40", 20, 40960, 0.667),
]
GPUS = {  # gpuType: name, VRAM GB, count options, cents per GPU-hour, regions
    "l4-24": ("NVIDIA L4", 24, [1, 2, 4, 8], 80, [
        "europe-west", "us-central", "asia-southeast", "us-east1", "us-west",
        "asia-northeast", "europe-west-frankfurt"]),
    "a100-40": ("NVIDIA A100 40GB", 40, [1, 2, 4, 8], 142, [
        "us-central", "europe-west-netherlands", "asia-southeast", "asia-northeast"]),
    "a100-80": ("NVIDIA A100 80GB", 80, [1, 2, 4, 8], 176, [
        "us-central", "europe-west-netherlands", "asia-southeast", "us-east1"]),
    "h100-80": ("NVIDIA H100", 80, [1, 2, 4, 8], 274, [
        "us-central", "europe-west-netherlands", "asia-southeast", "us-east1",
        "us-west", "asia-northeast"]),
    "rtx_pro_6000-96": ("NVIDIA RTX PRO 6000", 96, [8], 300, [
        "europe-west", "us-central", "us-east-ohio"]),
    "h200-141": ("NVIDIA H200", 141, [8], 314, [
        "us-central", "europe-west-netherlands", "us-east1", "us-west"]),
    "b200-180": ("NVIDIA B200", 180, [8], 587, [
        "europe-west-netherlands", "asia-southeast", "us-east1", "asia-northeast"]),
}
REGIONS = [
    "africa-south", "asia-east", "asia-northeast", "asia-southeast",
    "australia-southeast", "canada-central", "europe-west", "europe-west-frankfurt",
    "europe-west-netherlands", "europe-west-zurich", "southamerica-east",
    "us-central", "us-east-ohio", "us-east1", "us-west", "us-west-california",
]


def plans_catalogue() -> list[dict[str, Any]]:
    plans = [{"id": pid, "name": pid, "currency": "usd", "cpuResource": cpu,
              "ramResource": ram, "amountPerHour": usd,
              "amountPerMonth": round(usd * 730, 2)}
             for pid, cpu, ram, usd in COMPUTE_PLANS]
    for gpu_type, (_name, _vram, counts, _cents, _regions) in GPUS.items():
        for n in counts:  # bundled CPU/RAM: 8 vCPU and 32 GB per GPU (made up)
            usd = round(0.27 * n, 3)
            plans.append({"id": f"nf-gpu-{gpu_type}-{n}g", "name": f"{gpu_type} x{n}",
                          "currency": "usd", "cpuResource": 8 * n,
                          "ramResource": 32768 * n, "amountPerHour": usd,
                          "amountPerMonth": round(usd * 730, 2)})
    return plans


def regions_catalogue() -> list[dict[str, Any]]:
    out = []
    for region in REGIONS:
        devices = [{"id": gid, "name": name, "manufacturer": "NVIDIA",
                    "memoryInfo": {"sizeInMiB": vram * 1024}, "countOptions": counts,
                    "pricing": {"onDemand": cents}}
                   for gid, (name, vram, counts, cents, where) in GPUS.items()
                   if region in where]
        out.append({"id": region, "name": region, "regionName": region.split("-")[0],
                    "provider": {"id": "gcp", "region": region}, "gpuDevices": devices})
    return out
