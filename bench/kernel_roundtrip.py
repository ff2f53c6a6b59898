"""Kernel round trip and stream throughput: direct, through SSH, and %%sindri run.

In one run, against the same baseline (a kernel on this machine reached
directly, as Jupyter reaches a local kernel):

- round trip: median time of ``execute("pass")`` until idle, direct vs the same
  kernel code behind a real sshd and our tunnels (the ``ssh`` provider);
- throughput: a cell printing about 20 MB, direct vs tunnelled;
- relay: the same trivial cell through ``%%sindri run`` in an IPython shell
  (sessions, queue and publish included) vs direct.

Goals (issue 3): round trip <= 1.15x direct, throughput >= 0.9x direct, relay
<= 1.3x direct. Prints ratios; no assertions.

    python -m bench.kernel_roundtrip [--pings 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

from bench.harness import report

STREAM_CODE = ("import sys\nline = 'x' * 1023 + '\\n'\n"
               "for _ in range(20480):\n    sys.stdout.write(line)\n")
STREAM_BYTES = 20480 * 1024


def _setup(tmp: Path):
    """A local and an ssh environment, deployed through the engine."""
    os.environ["SINDRI_HOME"] = str(tmp / "home")
    from sindri_jupyter.config import loads
    from sindri_jupyter.core import sync
    from sindri_jupyter.core.engine import Engine
    from sindri_jupyter.remote.keys import ensure_key_pair
    from tests.sshd import start_sshd

    server = start_sshd(tmp / "sshd")
    pair = ensure_key_pair(tmp / "user-key")
    server.authorize(pair.public_key)
    engine = Engine()
    sync.run(engine.deploy(loads("name: direct\n", "bench")))
    sync.run(engine.deploy(loads(
        "name: tunnel\ndeployment: {provider: ssh}\nproviders:\n"
        f"  ssh: {{host: 127.0.0.1, port: {server.port}, user: {server.user}, "
        f"identity_file: {pair.private_path}, python: {sys.executable}}}\n", "bench")))
    return engine, server


async def _pings(name: str, count: int) -> list[float]:
    from sindri_jupyter.remote import sessions

    session = await sessions.session(name)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        await session.execute("pass", lambda k, c: None)
        times.append(time.perf_counter() - started)
    return times


async def _stream(name: str) -> float:
    from sindri_jupyter.remote import sessions

    session = await sessions.session(name)
    got = [0]

    def count(kind, content):
        if kind == "stream":
            got[0] += len(content["text"])

    started = time.perf_counter()
    await session.execute(STREAM_CODE, count)
    elapsed = time.perf_counter() - started
    if got[0] != STREAM_BYTES:
        raise SystemExit(f"stream lost bytes: {got[0]} of {STREAM_BYTES}")
    return STREAM_BYTES / elapsed / 1e6


def _relay_pings(shell, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        with redirect_stdout(io.StringIO()):
            shell.run_cell_magic("sindri", "run direct", "pass")
        times.append(time.perf_counter() - started)
    return times


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pings", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    from IPython.core.interactiveshell import InteractiveShell

    from sindri_jupyter.core import sync

    tmp = Path(tempfile.mkdtemp(prefix="sindri-bench-"))
    engine, server = _setup(tmp)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "sindri_jupyter")
    direct, tunnel, relay, mb_direct, mb_tunnel = [], [], [], [], []
    try:
        sync.run(_pings("direct", 20)), sync.run(_pings("tunnel", 20))
        for _ in range(args.rounds):
            direct += sync.run(_pings("direct", args.pings))
            tunnel += sync.run(_pings("tunnel", args.pings))
            relay += _relay_pings(shell, args.pings)
            mb_direct.append(sync.run(_stream("direct")))
            mb_tunnel.append(sync.run(_stream("tunnel")))
    finally:
        from sindri_jupyter.remote import sessions

        sync.run(sessions.close_all())
        for name in ("direct", "tunnel"):
            sync.run(engine.destroy(name))
        server.stop()
    d, t, r = (statistics.median(x) for x in (direct, tunnel, relay))
    figures = {
        "roundtrip_direct_ms": d * 1000, "roundtrip_tunnel_ms": t * 1000,
        "roundtrip_ratio": t / d, "roundtrip_goal": 1.15,
        "relay_ms": r * 1000, "relay_ratio": r / d, "relay_goal": 1.3,
        "throughput_direct_MBps": statistics.median(mb_direct),
        "throughput_tunnel_MBps": statistics.median(mb_tunnel),
        "throughput_ratio": statistics.median(mb_tunnel) / statistics.median(mb_direct),
        "throughput_goal": 0.9,
        "pings": args.pings * args.rounds, "rounds": args.rounds,
    }
    report("kernel_roundtrip", figures)
    return figures


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
