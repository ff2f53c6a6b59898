"""A fake RunPod REST v2 server on loopback, for tests and offline rehearsal.

It speaks RunPod's wire format: bearer auth, problem+json errors, ``x-request-id``
and ``RateLimit`` / ``RateLimit-Policy`` on every answer, closed request bodies
(unknown field -> 422), 409 for an action not in the pod's ``actions``. Pods walk
a timeline PROVISIONING -> STARTING -> RUNNING (seconds per phase, 0 = instant);
``runtime`` is null, then ``{}``, then filled, and the direct SSH mapping of a
running pod points at the sshd host and port given to the fake, which accepts
the pod's ``PUBLIC_KEY`` when ``authorize`` hands it over.

    fake = FakeRunPod(ssh_port=2222, authorize=sshd.authorize).start()
    fake.inject("create", status=500, after=True)   # the pod exists, the answer lies
    fake.take_host_gpus(pod_id)                      # its next start gets a 400
    ... RunPodClient(fake.api_key, fake.url) ...
    fake.count("POST", "/v2/pods"); fake.stop()

Run it for a rehearsal (then point SINDRI_RUNPOD_API_URL at it):

    python -m sindri_jupyter.testing.fake_runpod --port 8765 --ssh-port 2222
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sindri_jupyter.errors import UsageError
from sindri_jupyter.testing import fake_runpod_catalog as cat
from sindri_jupyter.testing.fake_runpod_api import Api, FakePod, Reply, problem, route

OPS = ("list_pods", "create", "get_pod", "update_pod", "delete_pod", "action", "logs",
       "gpus", "cpus", "datacenters", "volumes", "ssh_keys", "billing", "*")
WINDOWS = (("minute", 60), ("hour", 3600), ("day", 86400))


@dataclass
class Fault:
    """One injected misbehaviour; see ``FakeRunPod.inject``."""

    op: str
    status: int | None = None
    retry_after: float | None = None
    retry_after_date: bool = False
    times: int = 1
    delay: float = 0.0
    drop: bool = False
    after: bool = False
    detail: str | None = None


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int  # 0 when the connection was dropped without an answer
    op: str
    at: float = field(default_factory=time.monotonic)


class FakeRunPod:
    """The fake server; every attribute below may be changed while it runs."""

    def __init__(
        self,
        *,
        api_key: str = "fake-runpod-key",
        ssh_host: str = "127.0.0.1",
        ssh_port: int = 22,
        ssh_user: str = "root",
        authorize: Callable[[str], None] | None = None,
        provision_seconds: float = 0.0,
        start_seconds: float = 0.0,
        page_size: int | None = None,
        quota_per_minute: int = 600,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_key = api_key
        self.ssh_host, self.ssh_port, self.ssh_type = ssh_host, ssh_port, "tcp"
        self.ssh_user = ssh_user
        # Called with each new pod's PUBLIC_KEY: the sshd behind ssh_port should
        # then accept it, as the image's start script makes the pod's sshd do.
        self.authorize = authorize
        self.provision_seconds, self.start_seconds = provision_seconds, start_seconds
        self.page_size = page_size  # None: plain {"pods": [...]}; N: paginated
        self.quotas = {"minute": quota_per_minute, "hour": quota_per_minute * 50,
                       "day": quota_per_minute * 800}
        self.clock = clock
        self.pods: dict[str, FakePod] = {}
        self.volumes: dict[str, dict[str, Any]] = {}
        self.ssh_keys: list[str] = []
        self.gpus = cat.gpu_catalog()
        self.stock: dict[tuple[str, str], str] = {}  # (gpu id, cloud) -> level
        self.requests: list[Logged] = []
        self._faults: list[Fault] = []
        self._used: dict[str, tuple[float, int]] = {}
        self._lock = threading.RLock()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeRunPod":
        # A short poll interval keeps stop() (and so every test) quick.
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="fake-runpod", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeRunPod":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls ------------------------------------------------------------

    def inject(self, op: str, *, status: int | None = None,
               retry_after: float | None = None, retry_after_date: bool = False,
               times: int = 1, delay: float = 0.0, drop: bool = False,
               after: bool = False, detail: str | None = None) -> None:
        """Misbehave on the next ``times`` requests of ``op`` (one of OPS).

        ``status`` answers with that problem+json; ``retry_after`` adds the
        header (``retry_after_date`` sends it as an HTTP date); ``delay`` sleeps
        first; ``drop`` closes the connection without an answer; ``after`` does
        the real work (e.g. creates the pod) before failing. A 400 without
        ``detail`` carries RunPod's "no instances available" text.
        """
        if op not in OPS:
            raise UsageError(f"unknown fake operation {op!r}", hint=", ".join(OPS))
        with self._lock:
            self._faults.append(Fault(op, status, retry_after, retry_after_date,
                                      times, delay, drop, after, detail))

    def set_stock(self, gpu_id: str, cloud: str, level: str) -> None:
        """Availability of ``gpu_id`` in ``cloud``: NONE makes creates fail (400)."""
        with self._lock:
            self.stock[(gpu_id, cloud)] = level

    def take_host_gpus(self, pod_id: str) -> None:
        """Rent the GPUs of a stopped pod's host to someone else: start gets a 400."""
        with self._lock:
            self.pods[pod_id].host_taken = True

    def delete_out_of_band(self, pod_id: str) -> None:
        """Remove a pod as if someone deleted it in RunPod's console."""
        with self._lock:
            self.pods.pop(pod_id, None)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests logged so far, filtered by method and exact path or prefix*."""
        with self._lock:
            return sum(1 for r in self.requests if _matches(r, method, path))

    def live_pods(self) -> list[str]:
        with self._lock:
            return list(self.pods)

    def take_fault(self, op: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.op in (op, "*") and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def rate_headers(self) -> dict[str, str]:
        """RateLimit headers after counting one more request in every window."""
        now, live, policy = self.clock(), [], []
        with self._lock:
            for name, length in WINDOWS:
                start, used = self._used.get(name, (now, 0))
                if now - start >= length:
                    start, used = now, 0
                self._used[name] = (start, used + 1)
                left = max(0, self.quotas[name] - used - 1)
                live.append(f'"{name}";r={left};t={int(length - (now - start)) or 1}')
                policy.append(f'"{name}";q={self.quotas[name]};w={length}')
        return {"RateLimit": ", ".join(live), "RateLimit-Policy": ", ".join(policy)}


def _matches(r: Logged, method: str | None, path: str | None) -> bool:
    if method and r.method != method:
        return False
    if path is None:
        return True
    return r.path.startswith(path[:-1]) if path.endswith("*") else r.path == path


def _handler_for(fake: FakeRunPod) -> type[BaseHTTPRequestHandler]:
    api = Api(fake)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like the real API
        server_version = "fake-runpod"
        # Headers and body go out in two writes; without this, Nagle plus
        # delayed ACK adds ~40 ms to every keep-alive answer.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the request log on the fake object is the record."""

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            path = unquote(parts.path).rstrip("/") or "/"
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body, bad_json = _json_body(raw)
            op, params, allowed = route(method, path)
            reply = self._answer(method, path, op, params, allowed, query, body,
                                 bad_json)
            with fake._lock:
                fake.requests.append(Logged(method, path, query, body,
                                            reply.status if reply else 0, op or "-"))
            if reply is None:
                self._drop()
            else:
                self._send(reply)

        def _answer(self, method, path, op, params, allowed, query, body,
                    bad_json) -> Reply | None:
            auth = self.headers.get("Authorization") or ""
            self.authed = False
            if not auth.startswith("Bearer "):
                return problem(401, "missing bearer token")
            if not secrets.compare_digest(auth[7:], fake.api_key):
                return problem(401, "invalid bearer token")
            self.authed = True  # only authenticated answers carry RateLimit
            if path.startswith("/v1/") or path.startswith("/graphql"):
                return problem(410, "this API version was retired on 2026-11-15; "
                               "use /v2")
            if op is None:
                if allowed:
                    return problem(405, "method not allowed",
                                   Allow=", ".join(allowed))
                return problem(404, f"no route for {path}")
            if bad_json:
                return problem(400, "request body is not valid JSON")
            fault = fake.take_fault(op)
            if fault is not None and fault.delay:
                time.sleep(fault.delay)
            if fault is None or fault.status is None and not fault.drop:
                return api.dispatch(method, op, params, query, body, self.headers)
            if fault.after:
                api.dispatch(method, op, params, query, body, self.headers)
            return None if fault.drop else _fault_reply(fault)

        def _send(self, reply: Reply) -> None:
            if isinstance(reply.body, str):
                data = reply.body.encode()
            elif reply.body is None:
                data = b""
            else:
                data = json.dumps(reply.body).encode()
            self.send_response(reply.status)
            headers = {"x-request-id": uuid.uuid4().hex}
            if getattr(self, "authed", False):
                headers.update(fake.rate_headers())
            headers.update(reply.headers)
            if data:
                headers["Content-Type"] = reply.content_type
            headers["Content-Length"] = str(len(data))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _drop(self) -> None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # the peer may be gone already; dropping is the point

    return Handler


def _json_body(raw: bytes) -> tuple[Any, bool]:
    if not raw:
        return None, False
    try:
        return json.loads(raw), False
    except ValueError:
        return None, True


def _fault_reply(fault: Fault) -> Reply:
    status = fault.status or 500
    detail = fault.detail
    if detail is None:
        detail = {400: cat.CAPACITY_DETAIL, 401: "missing bearer token",
                  402: "insufficient balance to deploy this pod",
                  403: "access denied", 409: "action not valid for the pod's status",
                  429: "rate limit exceeded for the minute window"}.get(
                      status, "internal error")
    reply = problem(status, detail)
    if fault.retry_after is not None:
        if fault.retry_after_date:
            moment = datetime.now(timezone.utc).timestamp() + fault.retry_after
            reply.headers["Retry-After"] = _http_date(moment)
        else:
            reply.headers["Retry-After"] = str(int(fault.retry_after))
    return reply


def _http_date(epoch: float) -> str:
    from email.utils import formatdate

    return formatdate(epoch, usegmt=True)


def _appender(path: str | None) -> Callable[[str], None] | None:
    if not path:
        return None

    def append(key: str) -> None:
        with open(path, "a", encoding="utf-8") as out:
            out.write(key.strip() + "\n")
    return append


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sindri_jupyter.testing.fake_runpod",
        description="A fake RunPod REST v2 API on loopback for offline rehearsal.",
    )
    parser.add_argument("--port", type=int, default=8765, help="TCP port to listen on")
    parser.add_argument("--ssh-host", default="127.0.0.1",
                        help="address pods report for direct SSH")
    parser.add_argument("--ssh-port", type=int, default=22,
                        help="port pods report for direct SSH (your local sshd)")
    parser.add_argument("--authorized-keys", default=None,
                        help="append each new pod's PUBLIC_KEY to this file (the "
                        "AuthorizedKeysFile of your local sshd)")
    parser.add_argument("--api-key", default="fake-runpod-key",
                        help="the bearer token the fake accepts")
    parser.add_argument("--provision-seconds", type=float, default=3.0,
                        help="seconds a new pod stays PROVISIONING")
    parser.add_argument("--start-seconds", type=float, default=3.0,
                        help="seconds a pod then stays STARTING")
    args = parser.parse_args(argv)
    fake = FakeRunPod(api_key=args.api_key, ssh_host=args.ssh_host,
                      ssh_port=args.ssh_port, port=args.port,
                      authorize=_appender(args.authorized_keys),
                      provision_seconds=args.provision_seconds,
                      start_seconds=args.start_seconds)
    print(f"fake RunPod at {fake.url}\n"
          f"  export SINDRI_RUNPOD_API_URL={fake.url}\n"
          f"  export RUNPOD_API_KEY={args.api_key}\n"
          "Ctrl-C stops it.", flush=True)
    try:
        fake._server.serve_forever()
    except KeyboardInterrupt:
        pass  # Ctrl-C is how the user ends a rehearsal
    finally:
        fake._server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
