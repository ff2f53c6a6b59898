"""RunPod: the tool's own deploy overhead, beyond the SSH handshake and kernel start.

Against the instant fake RunPod (pods RUNNING at once) whose SSH endpoint is a
real sshd on 127.0.0.1, in one run, interleaved:

- subject: ``Engine.deploy`` of the issue-2 example (plan with the catalog,
  record, create, poll, SSH, kernel start, kernel answers), then destroy;
- baseline: the SSH handshake and kernel start alone, to the same sshd with
  the same key, through the same remote-kernel code (``EnvironmentKernel``).

The difference is what sindri adds. Also reported: the engine's poll spacing
while a pod provisions (issue 4 goal: at most one request every 2 s, backing
off to one every 10 s), and API requests per deploy. No assertions.

    python -m bench.runpod_deploy [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import report

CONFIG = ("name: bench-{i}\nversion: 3.1.0\ndeployment:\n  provider: runpod\n"
          "  image: pytorch/pytorch:2.0.1-cuda11.8-cudnn8-runtime\n"
          "providers:\n  runpod: {{gpu_type_id: NVIDIA_RTX_A6000, gpu_count: 2,\n"
          "           volume_mount_path: {workspace}}}\n")


def _deploy(engine, text: str) -> tuple[float, str]:
    from sindri_jupyter.config import loads
    from sindri_jupyter.core import sync

    config = loads(text, "bench.yaml", {})
    started = time.perf_counter()
    sync.run(engine.deploy(config))
    took = time.perf_counter() - started
    return took, config.name


def _bare(server, tmp: Path, i: int) -> float:
    """Handshake and kernel start only, on a fresh environment folder."""
    from sindri_jupyter.core import sync
    from sindri_jupyter.remote.envkernel import EnvironmentKernel
    from sindri_jupyter.remote.keys import ensure_key_pair
    from sindri_jupyter.remote.ssh import SSHTarget
    from sindri_jupyter.remote.sshhost import SSHHost

    folder = tmp / f"bare-{i}"
    pair = ensure_key_pair(folder)
    server.authorize(_image_line(pair.public_key))
    target = SSHTarget(name=f"bare-{i}", host="127.0.0.1", port=server.port,
                       user=server.user, key_path=pair.private_path,
                       pin_path=folder / "known_hosts")

    async def go() -> float:
        host = SSHHost(target, "python3", str(folder / "work"))
        kernel = EnvironmentKernel(f"bare-{i}", host, folder, f"~/.sindri/bare-{i}")
        try:
            started = time.perf_counter()
            facts = await kernel.start(120)
            await kernel.wait_answers(120)
            took = time.perf_counter() - started
        finally:
            await host.aclose()
        os.killpg(facts["pid"], signal.SIGTERM)  # the "host" is this machine
        return took

    return sync.run(go())


def _image_line(public_key: str) -> str:
    from sindri_jupyter.testing.rehearsal import image_key_line

    return image_key_line(public_key)


def _poll_spacing(fake, engine, workspace: Path) -> list[float]:
    """Seconds between the engine's pod reads while a pod takes 25 s to start."""
    fake.provision_seconds, fake.start_seconds = 15.0, 10.0
    before = len(fake.requests)
    try:
        _deploy(engine, CONFIG.format(i="poll", workspace=workspace))
    finally:
        fake.provision_seconds = fake.start_seconds = 0.0
    reads = [r.at for r in fake.requests[before:]
             if r.method == "GET" and r.path.startswith("/v2/pods/")]
    return [round(b - a, 1) for a, b in zip(reads, reads[1:])]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-poll", action="store_true", help="skip the 25 s poll run")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="sindri-bench-runpod-"))
    os.environ["SINDRI_HOME"] = str(tmp / "home")
    from sindri_jupyter.core import sync
    from sindri_jupyter.core.engine import Engine
    from sindri_jupyter.testing.fake_runpod import FakeRunPod
    from tests.sshd import start_sshd

    server = start_sshd(tmp / "sshd")
    fake = FakeRunPod(ssh_port=server.port, ssh_user=server.user,
                      authorize=lambda key: server.authorize(_image_line(key)))
    deploys, bares, requests = [], [], []
    with fake:
        os.environ.update(RUNPOD_API_KEY=fake.api_key, SINDRI_RUNPOD_API_URL=fake.url)
        engine = Engine()
        try:
            for i in range(args.repeat + 1):  # the first pair warms up
                before = len(fake.requests)
                took, name = _deploy(engine, CONFIG.format(i=i, workspace=tmp / "ws"))
                requests.append(len(fake.requests) - before)
                sync.run(engine.destroy(name))
                bare = _bare(server, tmp, i)
                if i:
                    deploys.append(took)
                    bares.append(bare)
            spacing = [] if args.no_poll else _poll_spacing(fake, engine, tmp / "ws")
        finally:
            sync.run(engine.aclose())
            server.stop()
    deploy, bare = statistics.median(deploys), statistics.median(bares)
    figures = {
        "deploy_s": deploy, "ssh_and_kernel_s": bare,
        "overhead_s": deploy - bare, "overhead_goal_s": 0.5,
        "requests_per_deploy": statistics.median(requests[1:]),
        "poll_spacing_s": " ".join(map(str, spacing)) or "-",
        "poll_goal": "first >= 2 s, backing off to 10 s",
        "repeat": args.repeat,
    }
    report("runpod_deploy", figures)
    return figures


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
