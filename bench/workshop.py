"""Workshop deploy of 30 environments against one, in the same run (issue 6).

The fake clouds need a real sshd and SSH host layer per environment, so this
bench uses the lifecycle engine with an in-bench provider instead: every
resource takes ``--provision`` seconds (default 3) to become RUNNING, then gets
a local kernel endpoint, so the engine starts a real ipykernel per environment
on this machine, as it would over SSH on a remote one. Goal: the workshop takes
at most 1.3x the single deploy.

Two figures per run: ``provisioned`` (until the last environment is RUNNING;
what provider concurrency decides) and ``ready`` (until the last kernel
answers; on a 2-core machine thirty kernels starting at once are CPU-bound,
which on a cloud happens on thirty different machines).

    python -m bench.workshop [--seats 30] [--provision 3] [--repeat 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.harness import report


class TimedProvider:
    """RUNNING ``provision`` seconds after create, with a local endpoint."""

    name = "bench"
    first_poll = 0.2
    max_poll = 0.5

    def __init__(self, provision: float):
        from sindri_jupyter.core.types import Capabilities

        self.provision = provision
        self.capabilities = Capabilities()
        self.created: dict[str, float] = {}
        self.gone: set[str] = set()

    async def plan(self, config):
        from sindri_jupyter.core.types import Plan

        return Plan("bench", config.name, "bench box", gpu="RTX 4090", gpu_count=1,
                    price_per_hour=0.69)

    async def create(self, config, handle):
        from sindri_jupyter.core import paths
        from sindri_jupyter.core.types import Handle

        self.created[handle.name] = time.monotonic()
        folder = paths.env_dir(handle.name)
        data = dict(handle.data, host_workdir=str(folder / "kernel"))
        return Handle(handle.provider, handle.name, handle.marker, f"id-{handle.name}",
                      data)

    async def find(self, handle):
        return None

    async def get(self, handle):
        from sindri_jupyter.core.types import Endpoint, Observed, State

        if handle.name in self.gone:
            return Observed(State.GONE, "deleted")
        if time.monotonic() - self.created[handle.name] < self.provision:
            return Observed(State.PROVISIONING, "PROVISIONING")
        return Observed(State.RUNNING, "RUNNING", endpoint=Endpoint(kind="local"))

    async def start(self, handle):
        return None

    async def stop(self, handle):
        return None

    async def destroy(self, handle):
        self.gone.add(handle.name)

    async def list_owned(self):
        return []

    async def check(self):
        return []

    async def aclose(self):
        return None


async def one_run(seats: int, provision: float, base: Path, tag: str) -> dict:
    from sindri_jupyter.core.engine import Engine
    from sindri_jupyter.frontends.workshop import Participant, Workshop

    engine = Engine(providers={"local": TimedProvider(provision)})
    roster = [Participant(f"p{i:02d}") for i in range(seats)]
    workshop = Workshop.plan(roster, str(base), name=tag)
    running: list[float] = []
    start = time.monotonic()

    def on_event(seat, event):
        if event.phase in ("kernel", "ssh") and "connecting" in event.message:
            running.append(time.monotonic() - start)

    await workshop.deploy(engine, on_event=on_event)
    ready = time.monotonic() - start
    failed = [s for s in workshop.seats if s.outcome != "ready"]
    await workshop.destroy(engine)
    if failed:
        raise SystemExit(f"{len(failed)} seats failed: {failed[0].error}")
    return {"provisioned": max(running), "ready": ready}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seats", type=int, default=30)
    parser.add_argument("--provision", type=float, default=3.0, help="seconds")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)

    os.environ["SINDRI_HOME"] = tempfile.mkdtemp(prefix="sindri-bench-workshop-")
    base = Path(os.environ["SINDRI_HOME"]) / "base.yaml"
    base.write_text("name: base\ndeployment:\n  provider: local\n")
    singles, groups = [], []
    for i in range(args.repeat):  # interleaved, so drift hits both alike
        singles.append(asyncio.run(one_run(1, args.provision, base, f"one{i}")))
        groups.append(asyncio.run(one_run(args.seats, args.provision, base, f"all{i}")))

    def med(rows, key):
        return statistics.median(r[key] for r in rows)

    figures = {
        "seats": args.seats, "provision_s": args.provision, "repeat": args.repeat,
        "single_ready_s": med(singles, "ready"),
        "workshop_ready_s": med(groups, "ready"),
        "ratio_ready": med(groups, "ready") / med(singles, "ready"),
        "single_provisioned_s": med(singles, "provisioned"),
        "workshop_provisioned_s": med(groups, "provisioned"),
        "ratio_provisioned": med(groups, "provisioned") / med(singles, "provisioned"),
        "goal_ratio": 1.3,
        "cpu_count": os.cpu_count() or 0,
    }
    report("workshop", figures)
    return figures


if __name__ == "__main__":
    main()
