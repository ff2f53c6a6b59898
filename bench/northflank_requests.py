"""Requests per Northflank deploy and per ten-minute wait, against 1000 an hour.

Runs the provider against the fake Northflank on loopback with a simulated
clock (an hour takes about a second) and prints figures; no assertions.

    /tmp/venv0/bin/python bench/northflank_requests.py
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace as NS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sindri_jupyter.core.types import Handle, State
from sindri_jupyter.providers.northflank import NorthflankProvider, budget
from sindri_jupyter.providers.northflank.api import NorthflankApi
from sindri_jupyter.testing.fake_northflank import FakeNorthflank

BUDGET = 1000
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def no_sleep(seconds: float) -> None:
    """Simulated time: nothing really waits."""


def config(name: str) -> NS:
    resources = NS(gpu=NS(type="H100", count=1), cpu=None, memory_gb=None, disk_gb=None)
    return NS(name=name, deployment=NS(image="pytorch/pytorch:2.0.1-cuda11.8-cudnn8-"
                                       "runtime", env={}, resources=resources),
              providers=NS(northflank=NS(project_name="bench", region="us-central")))


async def wait(provider, clock, handles, seconds, until_running=False) -> None:
    due = {h.marker: clock.now for h in handles}
    end = clock.now + seconds
    while due:
        marker = min(due, key=due.get)
        if due[marker] >= end:
            return
        clock.now = due[marker]
        seen = await provider.get(next(h for h in handles if h.marker == marker))
        if until_running and seen.state is State.RUNNING:
            del due[marker]
            continue
        due[marker] = clock.now + provider.poll_interval()


async def scenario(envs: int, wait_s: float, pending: float, progress: float):
    budget._pollers.clear()
    clock = Clock()
    with FakeNorthflank(pending_seconds=pending, progress_seconds=progress,
                        clock=clock) as fake:
        api = NorthflankApi("test-token", fake.url, sleep=no_sleep, clock=clock)
        provider = NorthflankProvider(api=api)
        made = []
        for i in range(envs):
            made.append(await provider.create(config(f"env-{i}"), Handle(
                "northflank", f"env-{i}", f"m{i}", data={"public_key": KEY})))
        created = len(fake.requests)
        await wait(provider, clock, made, wait_s, until_running=progress < wait_s)
        interval = provider.poll_interval()
        await api.aclose()
        ops = Counter(r.op for r in fake.requests)
        throttled = sum(1 for r in fake.requests if r.status == 429)
    return created, len(fake.requests), ops, throttled, interval


def main() -> None:
    print(f"budget: {BUDGET} requests/hour per account; min poll interval "
          f"{budget.MIN_INTERVAL:.0f} s\n")
    created, total, ops, _, _ = asyncio.run(scenario(1, 3600, 60, 120))
    print("one GPU deploy (60 s PENDING + 120 s IN_PROGRESS, polled to RUNNING):")
    print(f"  create {created} requests, whole deploy {total} "
          f"({total / BUDGET:.1%} of the hourly budget); by call: {dict(ops)}")
    for envs in (1, 10):
        created, total, ops, throttled, interval = asyncio.run(
            scenario(envs, 600, 0, 10**6))
        polls = total - created
        print(f"\n{envs} environment(s) waiting ten minutes (never ready):")
        print(f"  {polls} status/diagnosis requests = {polls / envs:.1f} per environment "
              f"(limit 60), {throttled} answered 429; final interval {interval:.0f} s")
    created, total, ops, throttled, interval = asyncio.run(scenario(10, 3599, 0, 10**6))
    print("\n10 environments waiting a whole hour (never ready):")
    print(f"  {total} requests incl. {created} for the creates = {total / BUDGET:.1%} "
          f"of the budget, {throttled} answered 429, get_service {ops['get_service']}, "
          f"logs {ops['get_logs']}; final interval {interval:.0f} s")


if __name__ == "__main__":
    main()
