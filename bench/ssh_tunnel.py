"""Round trip and throughput through one forwarded SSH port, against direct TCP.

Starts a real sshd on 127.0.0.1 (the test fixture's), a small echo/stream
server in a subprocess, and our ``Tunnels`` on one asyncssh connection in a
background event-loop thread, as the product runs them. The client uses
blocking sockets from the main thread and alternates direct and tunnelled runs,
so drift hits both alike. Prints ratios; no assertions.

    /tmp/venv0/bin/python bench/ssh_tunnel.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import median, report
from sindri_jupyter.remote import ssh, tunnels
from sindri_jupyter.remote.keys import ensure_key_pair
from tests.sshd import start_sshd

PINGS = 1000
STREAM_BYTES = 32 * 1024 * 1024

# "P\n" starts ping-pong of 64-byte messages; "S <n>\n" streams n bytes and closes.
SERVER = r"""
import socket, socketserver, sys
class H(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = s.makefile("rb")
        cmd = f.readline().split()
        if cmd[0] == b"P":
            while msg := f.read(64):
                s.sendall(msg)
        else:
            left, chunk = int(cmd[1]), b"x" * 65536
            while left > 0:
                s.sendall(chunk[:left]); left -= len(chunk)
class S(socketserver.ThreadingTCPServer):
    daemon_threads = allow_reuse_address = True
srv = S(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"""


def round_trip(port: int) -> dict:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"P\n")
        msg = b"m" * 64
        start = time.perf_counter()
        for _ in range(PINGS):
            s.sendall(msg)
            got = 0
            while got < 64:
                got += len(s.recv(64 - got))
        elapsed = time.perf_counter() - start
    return {"rt_us": elapsed / PINGS * 1e6}


def stream(port: int) -> dict:
    with socket.create_connection(("127.0.0.1", port)) as s:
        start = time.perf_counter()
        s.sendall(b"S %d\n" % STREAM_BYTES)
        got = 0
        while chunk := s.recv(1 << 20):
            got += len(chunk)
        elapsed = time.perf_counter() - start
    return {"mb_s": got / elapsed / 1e6}


def start_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    return loop


async def open_tunnel(sshd, workdir: Path, remote_port: int):
    pair = ensure_key_pair(workdir / "env")
    sshd.authorize(pair.public_key)
    target = ssh.SSHTarget(
        name="bench", host=sshd.host, port=sshd.port, user=sshd.user,
        key_path=pair.private_path, pin_path=workdir / "env" / "known_hosts",
    )
    conn = await ssh.connect(target)
    fwd = await tunnels.forward(conn, [remote_port])
    return conn, fwd, fwd.local_ports[remote_port]


def measure(direct: int, tunnelled: int, rounds: int) -> dict:
    figures: dict = {}
    for name, probe, key in (("round_trip", round_trip, "rt_us"),
                             ("throughput", stream, "mb_s")):
        probe(direct), probe(tunnelled)  # warm up
        base, subj = [], []
        for _ in range(rounds):
            base.append(probe(direct))
            subj.append(probe(tunnelled))
        figures[f"{name}_direct_{key}"] = median(base, key)
        figures[f"{name}_tunnel_{key}"] = median(subj, key)
        figures[f"{name}_ratio_tunnel_to_direct"] = median(subj, key) / median(base, key)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs of each probe")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sshd = start_sshd(workdir / "sshd")
        server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE,
                                  text=True)
        loop = start_loop()
        try:
            direct = int(server.stdout.readline())
            conn, fwd, tunnelled = asyncio.run_coroutine_threadsafe(
                open_tunnel(sshd, workdir, direct), loop).result(30)
            figures = measure(direct, tunnelled, args.rounds)
            asyncio.run_coroutine_threadsafe(fwd.close(), loop).result(10)
            asyncio.run_coroutine_threadsafe(conn.close(), loop).result(10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            server.terminate()
            server.wait(timeout=10)
            sshd.stop()
    figures["pings_per_sample"] = PINGS
    figures["stream_bytes"] = STREAM_BYTES
    report("ssh_tunnel", figures)


if __name__ == "__main__":
    main()
