"""A fake Northflank API v1 on loopback, faithful enough for the official SDK.

What it models (facts from ``/work/shared/reference/northflank-api.md``):

- envelopes ``{"data": ...}`` and ``{"error": {status, message, id, details}}``;
  list pagination (``per_page`` <= 100, default 50, ``page``, ``cursor``);
- ``x-ratelimit-limit/remaining/reset`` on every answer: a fixed window per
  token anchored on its first request (1000 an hour), 429 past it;
- projects; deployment services from an external image (plan, instances,
  ports, runtime env, health checks, horizontal autoscaling, GPU through a GPU
  plan plus ``deployment.gpu.configuration``); pause, resume (409 when not
  paused), delete; the ``PENDING -> IN_PROGRESS -> COMPLETED`` rollout on a
  configurable clock (0 s = instant); name grammar and derived-id 409s;
  containers and logs; team SSH identities; ``/v1/plans``, ``/v1/regions``
  and ``/v1/auth``.
- fault injection by operation name (the names are in ``_route_table``):
  ``fake.inject("create_service", status=429, retry_after=1, times=1)``,
  ``inject(op, delay=2)`` (slow answer), ``inject(op, status=500, after=True)``
  (the change is made, then the answer fails), ``inject(op, drop=True,
  after=True)`` (the change is made and the connection closes unanswered).

Every request is appended to ``fake.requests`` for counting. Routes answer on
``/v1/...`` and ``/v1/teams/{teamId}/...``. The CPU, memory and price of the
GPU plans are illustrative: the reference gives only their names and the
per-GPU prices. Standalone: ``python -m sindri_jupyter.testing.fake_northflank
--port N``.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from typing_extensions import Self

from sindri_jupyter.testing.fake_northflank_catalog import (
    GPUS,
    REGIONS,
    plans_catalogue,
    regions_catalogue,
)

NAME_RE = re.compile(r"^[a-zA-Z]((-|\s)?[a-zA-Z0-9]+((-|\s)[a-zA-Z0-9]+)*)?$")
PORT_NAME_RE = re.compile(r"^[a-zA-Z](-?[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*)?$")
TAG_RE = re.compile(r"^[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*$")
IMAGE_RE = re.compile(
    r"^(?:(?:https?:\/\/)?([a-zA-Z0-9\-]+\.[a-zA-Z0-9\.\-]+)(\/v1)?)?(?:\/)?"
    r"([a-zA-Z/-9\.\-_]+)(?:\:([a-zA-Z/-9\.\-_\:]+)|\@([a-zA-Z/-9\.\-_\:]+))$"
)
SERVICE_KEYS = {
    "name", "description", "tags", "stageId", "billing", "infrastructure",
    "deployment", "ports", "runtimeEnvironment", "runtimeFiles", "healthChecks",
    "loadBalancing", "autoscaling", "createOptions",
}
DEPLOYMENT_KEYS = {
    "instances", "type", "docker", "buildpack", "storage", "strategy",
    "zonalRedundancy", "gpu", "gracePeriodSeconds", "gradualRolloutStrategyId",
    "ssh", "metadata", "external", "internal", "containerSnapshot", "volumes",
}
HEALTH_REQUIRED = {"protocol", "type", "initialDelaySeconds", "periodSeconds",
                   "timeoutSeconds", "failureThreshold"}
DUPLICATE = "There is already a {kind} with the same derived identifier"
NOT_PAUSED = "The service could not be resumed as it is not paused."

class ApiFailure(Exception):
    """Raised inside a route; becomes the API's error envelope."""

    def __init__(self, status: int, message: str, details: Any = None):
        super().__init__(message)
        self.status, self.message, self.details = status, message, details



def derive_id(name: str) -> str:
    """Northflank's id of a name: lower case, whitespace runs become '-'."""
    return re.sub(r"\s+", "-", name.strip()).lower()


def check_name(name: Any, kind: str, max_len: int) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ApiFailure(400, f"Invalid {kind} name", {"name": ["must match pattern"]})
    if not 3 <= len(name) <= max_len:
        raise ApiFailure(400, f"Invalid {kind} name",
                         {"name": [f"length must be 3-{max_len}"]})
    return derive_id(name)


@dataclass
class Fault:
    op: str
    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    after: bool = False
    drop: bool = False
    message: str | None = None
    times: int = 1


@dataclass
class Record:
    method: str
    path: str
    op: str
    status: int
    at: float
    body: Any = None


@dataclass
class Service:
    project: str
    spec: dict[str, Any]
    rollout_at: float
    paused: bool = False
    failed: str | None = None  # message of a failed rollout
    stuck: bool = False
    logs: list[str] = field(default_factory=list)


Answer = tuple[int, dict[str, str], Any]


class FakeNorthflank:
    """The fake API; ``start()`` serves it on 127.0.0.1 from a daemon thread."""

    def __init__(
        self,
        *,
        tokens: tuple[str, ...] = ("test-token",),
        pending_seconds: float = 0.0,
        progress_seconds: float = 0.0,
        rate_limit: int = 1000,
        window_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        team: str = "sindri-team",
        authorize: Callable[[str], None] | None = None,
    ) -> None:
        self.tokens = set(tokens)
        self.pending_seconds, self.progress_seconds = pending_seconds, progress_seconds
        self.rate_limit, self.window_seconds = rate_limit, window_seconds
        self.clock, self.team = clock, team
        # Called with every public key of an SSH identity added or updated: the
        # sshd behind the CLI proxy should then accept it, as Northflank's does.
        self.authorize = authorize
        self.projects: dict[str, dict[str, Any]] = {}
        self.services: dict[tuple[str, str], Service] = {}
        self.identities: dict[str, dict[str, Any]] = {}
        self.requests: list[Record] = []
        self._faults: list[Fault] = []
        self._windows: dict[str, list[float]] = {}  # token -> [start, used]
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._routes = [(verb, re.compile(f"^{pattern}$"), op, fn)
                        for verb, pattern, op, fn in _route_table(self)]

    # -- life of the server ------------------------------------------------
    def start(self, port: int = 0) -> FakeNorthflank:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,),
                         name="fake-northflank", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise ValueError("the fake is not started; call start() first")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- test controls -----------------------------------------------------
    def inject(self, op: str, **kw: Any) -> None:
        """Make the next ``times`` calls of ``op`` fail, drop or slow down."""
        known = {op for _v, _p, op, _f in self._routes}
        if op not in known:
            raise ValueError(f"unknown operation {op!r}; known: {sorted(known)}")
        with self._lock:
            self._faults.append(Fault(op=op, **kw))

    def count(self, op: str | None = None, method: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests
                       if (op is None or r.op == op)
                       and (method is None or r.method == method))

    def fail_rollout(self, project: str, service: str, message: str,
                     logs: list[str] = ()) -> None:
        with self._lock:
            svc = self.services[(project, service)]
            svc.failed = message
            svc.logs.extend(logs)

    def stick_rollout(self, project: str, service: str, logs: list[str] = ()) -> None:
        with self._lock:
            svc = self.services[(project, service)]
            svc.stuck = True
            svc.logs.extend(logs)

    # -- one request (called from handler threads) --------------------------
    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> Answer:
        parts = urlsplit(raw_path)
        path = re.sub(r"^/v1/teams/[^/]+/", "/v1/", parts.path)
        op, route, params = self._match(method, path)
        token = _bearer(headers.get("Authorization"))
        answer = self._serve(op, route, params, parse_qs(parts.query), token, body)
        with self._lock:
            self.requests.append(Record(method, parts.path, op, answer[0],
                                        self.clock(), _json_or_none(body)))
        return answer

    def _serve(self, op, route, params, query, token, body) -> Answer:
        public = op in ("list_plans", "list_regions")
        if (token is None and not public) or (token and token not in self.tokens):
            return _error(401, "Unauthorized", {})
        headers, over = self._spend(token or "public")
        if over:
            return _error(429, "Too many requests",
                          {**headers, "Retry-After": headers["x-ratelimit-reset"]})
        fault = self._take_fault(op)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and not fault.after and (fault.status or fault.drop):
            return self._faulted(fault, headers)
        try:
            if route is None:
                raise ApiFailure(404, "Route not found")
            with self._lock:
                data, pagination = route(params, query, _json_or_none(body))
        except ApiFailure as exc:
            return _error(exc.status, exc.message, headers, exc.details)
        if fault is not None and (fault.status or fault.drop):
            return self._faulted(fault, headers)
        payload = {"data": data}
        if pagination is not None:
            payload["pagination"] = pagination
        return 200, headers, payload

    def _faulted(self, fault: Fault, headers: dict[str, str]) -> Answer:
        if fault.drop:
            return -1, headers, None
        extra = dict(headers)
        if fault.retry_after is not None:
            extra["Retry-After"] = str(int(fault.retry_after))
        return _error(fault.status or 500,
                      fault.message or f"injected failure of {fault.op}", extra)

    def _take_fault(self, op: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.op == op and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def _spend(self, token: str) -> tuple[dict[str, str], bool]:
        now = self.clock()
        with self._lock:
            window = self._windows.get(token)
            if window is None or now - window[0] >= self.window_seconds:
                window = self._windows[token] = [now, 0]
            over = window[1] >= self.rate_limit
            if not over:
                window[1] += 1
            reset = max(1, int(window[0] + self.window_seconds - now + 0.999))
            return {"x-ratelimit-limit": str(self.rate_limit),
                    "x-ratelimit-remaining": str(self.rate_limit - int(window[1])),
                    "x-ratelimit-reset": str(reset)}, over

    def _match(self, method: str, path: str):
        for verb, pattern, op, route in self._routes:
            found = pattern.match(path)
            if verb == method and found:
                return op, route, found.groupdict()
        return f"{method} {path}", None, {}

    # -- model helpers used by the routes ------------------------------------
    def new_rollout(self, svc: Service) -> None:
        svc.rollout_at, svc.failed = self.clock(), None

    def status_of(self, svc: Service) -> str:
        if svc.failed:
            return "FAILED"
        elapsed = self.clock() - svc.rollout_at
        if elapsed < self.pending_seconds:
            return "PENDING"
        if svc.stuck or elapsed < self.pending_seconds + self.progress_seconds:
            return "IN_PROGRESS"
        return "COMPLETED"

    def service(self, project: str, service: str) -> Service:
        self.project(project)
        svc = self.services.get((project, service))
        if svc is None:
            raise ApiFailure(404, f"Service {service} not found")
        return svc

    def project(self, project: str) -> dict[str, Any]:
        found = self.projects.get(project)
        if found is None:
            raise ApiFailure(404, f"Project {project} not found")
        return found

    def next_id(self) -> str:
        return f"{next(self._ids):06d}"


# --- routes: each returns (data, pagination or None) or raises ApiFailure ---
def _route_table(fake: FakeNorthflank) -> list[tuple[str, str, str, Callable]]:
    p, s = r"/v1/projects/(?P<project>[^/]+)", r"/services/(?P<service>[^/]+)"
    ids = r"/v1/integrations/ssh-identities"

    def body_or_empty(body: Any) -> dict[str, Any]:
        return body if isinstance(body, dict) else {}

    def listed(key: str | None, items: list[Any], query) -> tuple[Any, dict]:
        chunk, pagination = _page(items, query)
        return ({key: chunk} if key else chunk), pagination

    def auth(_p, _q, _b):
        return {"tokenKind": "api", "id": "sindri-token", "name": "sindri",
                "entityId": fake.team, "entityType": "team", "entityUid": "uid-team",
                "createdAt": "2026-01-01T00:00:00.000Z", "expiresAt": None}, None

    def create_project(_p, _q, body, upsert: bool = False):
        body = body_or_empty(body)
        pid = check_name(body.get("name"), "project", 39)
        if body.get("region") not in REGIONS:
            raise ApiFailure(400, f"Unknown region {body.get('region')!r}",
                             {"region": [f"must be one of {', '.join(REGIONS)}"]})
        if pid in fake.projects and not upsert:
            raise ApiFailure(409, DUPLICATE.format(kind="project"))
        fake.projects[pid] = {"id": pid, "name": body["name"],
                              "description": body.get("description", ""),
                              "region": body["region"], "lifecycleStatus": "created",
                              "createdAt": "2026-01-01T00:00:00.000Z"}
        return fake.projects[pid], None

    def get_project(params, _q, _b):
        proj = dict(fake.project(params["project"]))
        proj["deployment"] = {"region": proj["region"]}
        proj["services"] = [{"id": sid, "name": svc.spec["name"],
                             "serviceType": "deployment"}
                            for (pid, sid), svc in fake.services.items()
                            if pid == proj["id"]]
        return proj, None

    def delete_project(params, query, _b):
        pid = fake.project(params["project"])["id"]
        children = [k for k in fake.services if k[0] == pid]
        if children and query.get("delete_child_objects") != ["true"]:
            raise ApiFailure(409, "The project couldn't be deleted as it has "
                             "dependencies that have not been deleted")
        for key in children:
            del fake.services[key]
        del fake.projects[pid]
        return {}, None

    def create_service(params, _q, body):
        proj = fake.project(params["project"])
        body = body_or_empty(body)
        sid = check_name(body.get("name"), "service", 54)
        _check_service(body, proj["region"])
        if (proj["id"], sid) in fake.services:
            raise ApiFailure(409, DUPLICATE.format(kind="service"))
        spec = json.loads(json.dumps(body))
        spec.update(id=sid, appId=f"/{fake.team}/{proj['id']}/{sid}",
                    uid=f"uid-{fake.next_id()}", createdAt="2026-01-01T00:00:00.000Z")
        for port in spec.get("ports", []):
            port["id"] = f"p{fake.next_id()}"
        svc = fake.services[(proj["id"], sid)] = Service(proj["id"], spec, fake.clock())
        svc.logs.append(f"stdout F container for {sid} started")
        return _service_view(fake, svc, detailed=False), None

    def get_service(params, _q, _b):
        return _service_view(fake, fake.service(params["project"], params["service"])), None

    def list_services(params, query, _b):
        pid = fake.project(params["project"])["id"]
        items = [_service_item(fake, svc) for (p_, _), svc in fake.services.items()
                 if p_ == pid]
        return listed("services", items, query)

    def patch_service(params, _q, body):
        svc = fake.service(params["project"], params["service"])
        body = body_or_empty(body)
        if "name" in body or "createOptions" in body:
            raise ApiFailure(400, "name and createOptions cannot be patched")
        _merge(svc.spec, body)
        _check_service(svc.spec, fake.project(svc.project)["region"])
        fake.new_rollout(svc)
        return _service_view(fake, svc, detailed=False), None

    def delete_service(params, _q, _b):
        svc = fake.service(params["project"], params["service"])
        del fake.services[(svc.project, svc.spec["id"])]
        return {}, None

    def pause(params, _q, _b):
        svc = fake.service(params["project"], params["service"])
        if not svc.paused:
            svc.paused = True
            svc.spec["pausedInstances"] = svc.spec["deployment"]["instances"]
            svc.spec["deployment"]["instances"] = 0
        return {}, None

    def resume(params, _q, body):
        svc = fake.service(params["project"], params["service"])
        if not svc.paused:
            raise ApiFailure(409, NOT_PAUSED)
        body = body_or_empty(body)
        svc.paused = False
        svc.spec["deployment"]["instances"] = body.get(
            "instances", svc.spec.pop("pausedInstances", 1))
        fake.new_rollout(svc)
        return {}, None

    def containers(params, query, _b):
        svc = fake.service(params["project"], params["service"])
        return listed("containers", _containers(fake, svc), query)

    def logs(params, query, _b):
        svc = fake.service(params["project"], params["service"])
        limit = int((query.get("lineLimit") or ["100"])[0])
        lines = [{"containerId": f"{svc.spec['id']}-0-abcde", "log": line,
                  "ts": "2026-01-01T00:00:00.000Z"} for line in svc.logs[-limit:]]
        if (query.get("direction") or ["backward"])[0] == "backward":
            lines.reverse()
        return lines, None

    def add_identity(_p, _q, body, identity_id: str | None = None):
        body = body_or_empty(body)
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise ApiFailure(400, "Invalid SSH identity", {"name": ["required"]})
        iid = identity_id or derive_id(name)
        if identity_id is None and iid in fake.identities:
            raise ApiFailure(409, DUPLICATE.format(kind="SSH identity"))
        _check_keys(body)
        fake.identities[iid] = {**body, "id": iid}
        _authorize(fake, body)
        return fake.identities[iid], None

    def identity(params, _q, _b):
        found = fake.identities.get(params["identity"])
        if found is None:
            raise ApiFailure(404, f"SSH identity {params['identity']} not found")
        return found, None

    def update_identity(params, _q, body):
        found, _ = identity(params, _q, None)
        body = body_or_empty(body)
        if "name" in body:
            raise ApiFailure(400, "name cannot be changed", {"name": ["read only"]})
        _check_keys(body)
        found.update(body)
        _authorize(fake, body)
        return found, None

    def delete_identity(params, _q, _b):
        identity(params, _q, None)
        del fake.identities[params["identity"]]
        return {}, None

    return [
        ("GET", "/v1/auth", "get_auth", auth),
        ("GET", "/v1/plans", "list_plans", lambda *_: ({"plans": plans_catalogue()}, None)),
        ("GET", "/v1/regions", "list_regions",
         lambda *_: ({"regions": regions_catalogue()}, None)),
        ("GET", "/v1/projects", "list_projects",
         lambda _p, q, _b: listed("projects", list(fake.projects.values()), q)),
        ("POST", "/v1/projects", "create_project", create_project),
        ("PUT", "/v1/projects", "put_project",
         lambda pa, q, b: create_project(pa, q, b, upsert=True)),
        ("GET", p, "get_project", get_project),
        ("DELETE", p, "delete_project", delete_project),
        ("GET", p + "/services", "list_services", list_services),
        ("POST", p + "/services/deployment", "create_service", create_service),
        ("PATCH", p + r"/services/deployment/(?P<service>[^/]+)", "patch_service",
         patch_service),
        ("GET", p + s, "get_service", get_service),
        ("DELETE", p + s, "delete_service", delete_service),
        ("POST", p + s + "/pause", "pause_service", pause),
        ("POST", p + s + "/resume", "resume_service", resume),
        ("GET", p + s + "/containers", "list_containers", containers),
        ("GET", p + s + "/logs", "get_logs", logs),
        ("GET", ids, "list_ssh_identities",
         lambda _p, q, _b: listed("identities", list(fake.identities.values()), q)),
        ("POST", ids, "add_ssh_identity", add_identity),
        ("GET", ids + "/(?P<identity>[^/]+)", "get_ssh_identity", identity),
        ("PATCH", ids + "/(?P<identity>[^/]+)", "update_ssh_identity", update_identity),
        ("PUT", ids + "/(?P<identity>[^/]+)", "put_ssh_identity",
         lambda pa, q, b: add_identity(pa, q, b, identity_id=pa["identity"])),
        ("DELETE", ids + "/(?P<identity>[^/]+)", "delete_ssh_identity", delete_identity),
    ]


def _authorize(fake: FakeNorthflank, identity: dict[str, Any]) -> None:
    if fake.authorize is None:
        return
    for entry in identity.get("sshPublicKeys") or []:
        if isinstance(entry, dict) and entry.get("key"):
            fake.authorize(str(entry["key"]))


def _check_service(body: dict[str, Any], region: str) -> None:
    unknown = set(body) - SERVICE_KEYS - {"id", "appId", "uid", "createdAt",
                                          "pausedInstances"}
    if unknown:
        raise ApiFailure(400, "Unknown fields", {k: ["not allowed"] for k in unknown})
    plans = {plan["id"]: plan for plan in plans_catalogue()}
    plan_id = (body.get("billing") or {}).get("deploymentPlan")
    if plan_id not in plans:
        raise ApiFailure(400, f"Unknown deployment plan {plan_id!r}",
                         {"billing.deploymentPlan": ["unknown plan"]})
    deployment = body.get("deployment")
    if not isinstance(deployment, dict) or not isinstance(
            deployment.get("instances"), int):
        raise ApiFailure(400, "deployment.instances is required",
                         {"deployment.instances": ["required integer"]})
    if set(deployment) - DEPLOYMENT_KEYS:
        raise ApiFailure(400, "Unknown deployment fields",
                         {k: ["not allowed"] for k in set(deployment) - DEPLOYMENT_KEYS})
    image = (deployment.get("external") or {}).get("imagePath", "")
    if not IMAGE_RE.match(image or ""):
        raise ApiFailure(400, "Unable to verify external image")
    _check_gpu(deployment.get("gpu"), plan_id, region)
    _check_ports(body.get("ports") or [])
    for check in body.get("healthChecks") or []:
        if not HEALTH_REQUIRED <= set(check):
            raise ApiFailure(400, "Invalid health check",
                             {"healthChecks": [f"missing {sorted(HEALTH_REQUIRED - set(check))}"]})
    horizontal = (body.get("autoscaling") or {}).get("horizontal")
    if horizontal is not None and not {"enabled", "minReplicas", "maxReplicas"} <= set(
            horizontal):
        raise ApiFailure(400, "Invalid autoscaling",
                         {"autoscaling.horizontal": ["enabled, minReplicas, maxReplicas"]})
    for tag in body.get("tags") or []:
        if not TAG_RE.match(tag) or not 3 <= len(tag) <= 100:
            raise ApiFailure(400, f"Invalid tag {tag!r}", {"tags": ["must match pattern"]})


def _check_gpu(gpu: Any, plan_id: str, region: str) -> None:
    if not gpu or not gpu.get("enabled", True):
        return
    config = gpu.get("configuration") or {}
    gpu_type, count = config.get("gpuType"), config.get("gpuCount", 1)
    if not plan_id.startswith("nf-gpu-"):
        raise ApiFailure(400, f"Plan {plan_id} is not a GPU plan")
    if gpu_type not in GPUS:
        raise ApiFailure(400, f"Unknown GPU type {gpu_type!r}")
    if region not in GPUS[gpu_type][4]:
        raise ApiFailure(400, f"GPU type {gpu_type} is not available in region {region}")
    if count not in GPUS[gpu_type][2]:
        raise ApiFailure(400, f"GPU count {count} is not allowed for {gpu_type}",
                         {"gpuCount": [f"one of {GPUS[gpu_type][2]}"]})


def _check_ports(ports: list[dict[str, Any]]) -> None:
    for port in ports:
        name = port.get("name", "")
        if not PORT_NAME_RE.match(name) or not 1 <= len(name) <= 8:
            raise ApiFailure(400, f"Invalid port name {name!r}",
                             {"ports.name": ["1-8 chars, letters, digits and '-'"]})
        if port.get("protocol") not in ("HTTP", "HTTP/2", "TCP", "UDP"):
            raise ApiFailure(400, "Invalid port protocol")
        if port.get("public") and port["protocol"] in ("TCP", "UDP"):
            raise ApiFailure(400, "Only HTTP and HTTP/2 ports can be public")
        if port.get("internalPort") == 22:
            raise ApiFailure(400, "Port 22 is reserved for SSH")


def _check_keys(body: dict[str, Any]) -> None:
    for entry in body.get("sshPublicKeys") or []:
        key = entry.get("key", "") if isinstance(entry, dict) else ""
        if not re.match(r"^(ssh-(ed25519|rsa)|ecdsa-sha2-\S+) [A-Za-z0-9+/=]+", key):
            raise ApiFailure(400, "Invalid SSH public key", {"sshPublicKeys": ["key"]})


def _merge(into: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _service_view(fake: FakeNorthflank, svc: Service, detailed: bool = True):
    spec = json.loads(json.dumps(svc.spec))
    spec.pop("pausedInstances", None)
    if detailed:  # GET service leaves the runtime environment out
        spec.pop("runtimeEnvironment", None)
    spec.update(projectId=svc.project, serviceType="deployment",
                servicePaused=svc.paused, disabledCI=False, disabledCD=False)
    spec["deployment"]["region"] = fake.project(svc.project)["region"]
    spec["status"] = {"deployment": {"status": fake.status_of(svc),
                                     "reason": "DEPLOYING",
                                     "lastTransitionTime": "2026-01-01T00:00:00.000Z"}}
    if svc.failed:
        spec["status"]["deployment"]["message"] = svc.failed
    for port in spec.get("ports", []):
        if detailed and port.get("public"):
            port["dns"] = f"{port['name']}--{spec['id']}--abc123xyz.code.run"
    return spec


def _service_item(fake: FakeNorthflank, svc: Service) -> dict[str, Any]:
    view = _service_view(fake, svc)
    keep = ("id", "appId", "projectId", "name", "description", "serviceType",
            "disabledCI", "disabledCD", "status", "uid", "servicePaused")
    item = {k: view[k] for k in keep if k in view}
    item["tags"] = view.get("tags", [])
    return item


def _containers(fake: FakeNorthflank, svc: Service) -> list[dict[str, Any]]:
    if svc.paused:
        return []
    status = {"PENDING": "TASK_STAGING", "IN_PROGRESS": "TASK_STARTING",
              "COMPLETED": "TASK_RUNNING", "FAILED": "TASK_FAILED"}[fake.status_of(svc)]
    return [{"name": f"{svc.spec['id']}-{i}-abcde", "createdAt": 1767225600,
             "updatedAt": 1767225600, "status": status, "ipAddresses": ["10.0.0.2"]}
            for i in range(svc.spec["deployment"]["instances"])]


class _Handler(BaseHTTPRequestHandler):
    fake: FakeNorthflank
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; without TCP_NODELAY the client's
    # delayed ACK adds ~40 ms to every answer.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is ``fake.requests``."""

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self.fake.handle(
            self.command, self.path, self.headers, body)
        if status == -1:  # injected drop: no answer at all
            self.close_connection = True
            return
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any


def _bearer(value: str | None) -> str | None:
    if not value or not value.startswith("Bearer "):
        return None
    return value[len("Bearer "):].strip() or None


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _error(status: int, message: str, headers: dict[str, str],
           details: Any = None) -> Answer:
    return status, headers, {"error": {
        "status": status, "message": message, "details": details,
        "id": f"nf-err-{status}-{int(time.time() * 1000) % 1_000_000:06d}"}}


def _page(items: list[Any], query: dict[str, list[str]]) -> tuple[list[Any], dict]:
    per_page = max(1, min(100, int((query.get("per_page") or ["50"])[0])))
    start = 0
    if query.get("cursor"):
        start = int(base64.urlsafe_b64decode(query["cursor"][0]).decode())
    elif query.get("page"):
        start = (int(query["page"][0]) - 1) * per_page
    chunk = items[start:start + per_page]
    more = start + per_page < len(items)
    pagination: dict[str, Any] = {"hasNextPage": more, "count": len(chunk)}
    if more:  # the SDK reads any cursor as "there is a next page"
        pagination["cursor"] = base64.urlsafe_b64encode(
            str(start + per_page).encode()).decode()
    return chunk, pagination


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Northflank API.")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks one")
    parser.add_argument("--token", action="append", default=None,
                        help="accepted API token (repeatable); default test-token")
    parser.add_argument("--pending-seconds", type=float, default=0.0,
                        help="seconds a rollout stays PENDING")
    parser.add_argument("--progress-seconds", type=float, default=0.0,
                        help="seconds a rollout stays IN_PROGRESS")
    args = parser.parse_args(argv)
    fake = FakeNorthflank(tokens=tuple(args.token or ["test-token"]),
                          pending_seconds=args.pending_seconds,
                          progress_seconds=args.progress_seconds).start(args.port)
    print(f"fake Northflank on {fake.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
