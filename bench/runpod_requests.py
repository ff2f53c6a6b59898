"""RunPod: API requests per deploy, and the client's own cost per request.

Against the instant fake RunPod (every phase 0 s) in this process:

1. the requests a deploy-like sequence makes: plan, create, polls until the pod
   is RUNNING with an SSH endpoint, destroy, polls until GONE (per operation);
2. the time per ``RunPodClient.get_pod`` call (retry layer, error mapping,
   parsing) against a raw ``httpx.AsyncClient`` GET of the same URL, batches
   interleaved in the same run, reported as a ratio and a difference.

No assertions: figures only (issue 4 goal: under 0.5 s of tool overhead beyond
the SSH handshake and kernel start).

    python -m bench.runpod_requests [--repeat N] [--batch B]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import time
from types import SimpleNamespace

import httpx

from bench.harness import interleave, median, report
from sindri_jupyter.core.types import Handle, State
from sindri_jupyter.providers.runpod.client import RunPodClient
from sindri_jupyter.providers.runpod.provider import RunPodProvider
from sindri_jupyter.testing.fake_runpod import FakeRunPod


def _config() -> SimpleNamespace:
    section = SimpleNamespace(gpu_type_id="NVIDIA_RTX_A6000", gpu_count=2,
                              cloud_type="SECURE", data_center_ids=[], ports=[],
                              gpu_fallbacks=[])
    return SimpleNamespace(
        name="bench", deployment=SimpleNamespace(image="img:1", env={},
                                                 resources=None),
        providers=SimpleNamespace(runpod=section))


async def _deploy_cycle(fake: FakeRunPod, n: int) -> float:
    """One deploy-like sequence; returns its wall time in seconds."""
    started = time.perf_counter()
    provider = RunPodProvider(client=RunPodClient(fake.api_key, fake.url))
    handle = Handle(provider="runpod", name="bench", marker=f"bench-{n}")
    await provider.plan(_config())
    handle = await provider.create(_config(), handle)
    for _ in range(50):  # bounded: the instant fake is RUNNING at once
        seen = await provider.get(handle)
        if seen.state is State.RUNNING and seen.endpoint is not None:
            break
    await provider.destroy(handle)
    for _ in range(50):
        if (await provider.get(handle)).state is State.GONE:
            break
    await provider.aclose()
    return time.perf_counter() - started


def requests_per_deploy(fake: FakeRunPod) -> dict:
    before = len(fake.requests)
    seconds = asyncio.run(_deploy_cycle(fake, 0))
    calls = fake.requests[before:]
    by_op = collections.Counter(f"{c.method} {c.op}" for c in calls)
    figures = {"requests_per_deploy": len(calls), "deploy_cycle_s": seconds}
    figures.update({f"requests[{k}]": v for k, v in sorted(by_op.items())})
    return figures


async def _batch(fake: FakeRunPod, pod_id: str, count: int, raw: bool) -> float:
    headers = {"Authorization": f"Bearer {fake.api_key}"}
    if raw:
        async with httpx.AsyncClient(base_url=fake.url, headers=headers) as http:
            started = time.perf_counter()
            for _ in range(count):
                (await http.get(f"/v2/pods/{pod_id}")).json()
            return time.perf_counter() - started
    async with RunPodClient(fake.api_key, fake.url) as client:
        started = time.perf_counter()
        for _ in range(count):
            await client.get_pod(pod_id)
        return time.perf_counter() - started


def overhead(fake: FakeRunPod, repeat: int, batch: int) -> dict:
    pod_id = httpx.post(f"{fake.url}/v2/pods", headers={
        "Authorization": f"Bearer {fake.api_key}"}, json={
            "name": "bench", "image": "img:1", "ports": ["22/tcp"],
            "gpu": {"id": "NVIDIA RTX A6000", "count": 1}}).json()["id"]
    base, subj = interleave(
        lambda: {"s": asyncio.run(_batch(fake, pod_id, batch, raw=True)) / batch},
        lambda: {"s": asyncio.run(_batch(fake, pod_id, batch, raw=False)) / batch},
        repeat,
    )
    raw_ms, client_ms = median(base, "s") * 1000, median(subj, "s") * 1000
    return {"raw_httpx_ms_per_request": raw_ms, "client_ms_per_request": client_ms,
            "client_over_raw_ratio": client_ms / raw_ms,
            "client_extra_ms_per_request": client_ms - raw_ms}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="interleaved batches")
    parser.add_argument("--batch", type=int, default=100, help="requests per batch")
    args = parser.parse_args(argv)
    with FakeRunPod() as fake:
        figures = requests_per_deploy(fake)
        figures.update(overhead(fake, args.repeat, args.batch))
    report("runpod_requests", figures)
    return figures


if __name__ == "__main__":
    main()
