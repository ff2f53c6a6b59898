"""The behaviour behind the fake RunPod's routes: pods, catalog, volumes, keys.

``Api.dispatch`` takes a parsed request and returns a ``Reply``; the HTTP
plumbing, auth, rate-limit headers and fault injection live in ``fake_runpod``.
All state is the ``FakeRunPod`` object's, read and changed under its lock.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sindri_jupyter.testing import fake_runpod_catalog as cat

if TYPE_CHECKING:
    from sindri_jupyter.testing.fake_runpod import FakeRunPod

ACTIONS = {
    "PROVISIONING": ["stop", "terminate"],
    "STARTING": ["stop", "terminate"],
    "RUNNING": ["stop", "restart", "terminate"],
    "EXITED": ["start", "terminate"],
    "ERROR": ["start", "terminate"],
}

TITLES = {400: "Bad Request", 401: "Unauthorized", 402: "Payment Required",
          403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
          409: "Conflict", 410: "Gone", 422: "Unprocessable Entity",
          429: "Too Many Requests", 500: "Internal Server Error",
          502: "Bad Gateway", 503: "Service Unavailable"}


@dataclass
class FakePod:
    """One pod: its create body, placement and where it is on the timeline."""

    id: str
    body: dict[str, Any]
    created: float
    data_center: str
    cost: float
    desired: str = "RUNNING"  # RUNNING or EXITED
    phase_start: float = 0.0
    running_since: float | None = None
    status_override: str | None = None  # e.g. "ERROR" or a status RunPod adds later
    host_taken: bool = False  # its host's GPUs were rented out while it was stopped
    logs: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Reply:
    status: int
    body: Any = None  # dict/list -> JSON; str -> text as is
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


def problem(status: int, detail: str, errors: list[str] | None = None,
            **headers: str) -> Reply:
    body: dict[str, Any] = {"title": TITLES.get(status, "Error"), "status": status,
                            "detail": detail}
    if errors:
        body["errors"] = errors
    return Reply(status, body, dict(headers), "application/problem+json")


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


ROUTES = [
    ("GET", r"/v2/pods", "list_pods"),
    ("POST", r"/v2/pods", "create"),
    ("GET", r"/v2/pods/(?P<id>[^/]+)", "get_pod"),
    ("PATCH", r"/v2/pods/(?P<id>[^/]+)", "update_pod"),
    ("DELETE", r"/v2/pods/(?P<id>[^/]+)", "delete_pod"),
    ("POST", r"/v2/pods/(?P<id>[^/]+)/action", "action"),
    ("GET", r"/v2/pods/(?P<id>[^/]+)/logs", "logs"),
    ("GET", r"/v2/catalog/gpus", "gpus"),
    ("GET", r"/v2/catalog/gpus/(?P<id>[^/]+)", "gpus"),
    ("GET", r"/v2/catalog/cpus", "cpus"),
    ("GET", r"/v2/catalog/datacenters", "datacenters"),
    ("GET", r"/v2/network-volumes", "volumes"),
    ("POST", r"/v2/network-volumes", "volumes"),
    ("GET", r"/v2/network-volumes/(?P<id>[^/]+)", "volumes"),
    ("DELETE", r"/v2/network-volumes/(?P<id>[^/]+)", "volumes"),
    ("GET", r"/v2/account/ssh-keys", "ssh_keys"),
    ("PUT", r"/v2/account/ssh-keys", "ssh_keys"),
    ("GET", r"/v2/billing/pods", "billing"),
]


def route(method: str, path: str) -> tuple[str | None, dict[str, str], list[str]]:
    """(operation, path params, methods allowed on the path)."""
    allowed = []
    for verb, pattern, op in ROUTES:
        match = re.fullmatch(pattern, path)
        if match:
            allowed.append(verb)
            if verb == method:
                return op, match.groupdict(), allowed
    return None, {}, allowed


class Api:
    def __init__(self, fake: "FakeRunPod") -> None:
        self.fake = fake

    def dispatch(self, method: str, op: str, params: dict[str, str],
                 query: dict[str, str], body: Any, headers: Any) -> Reply:
        handler = getattr(self, f"_{op}")
        with self.fake._lock:
            return handler(method=method, params=params, query=query, body=body,
                           headers=headers)

    # -- pods -----------------------------------------------------------------

    def status_of(self, pod: FakePod) -> str:
        if pod.status_override:
            return pod.status_override
        if pod.desired == "EXITED":
            return "EXITED"
        elapsed = self.fake.clock() - pod.phase_start
        if elapsed < self.fake.provision_seconds:
            return "PROVISIONING"
        if elapsed < self.fake.provision_seconds + self.fake.start_seconds:
            return "STARTING"
        if pod.running_since is None:
            pod.running_since = pod.phase_start + self.fake.provision_seconds + \
                self.fake.start_seconds
        return "RUNNING"

    def pod_json(self, pod: FakePod) -> dict[str, Any]:
        status, b = self.status_of(pod), pod.body
        has_ssh = "22/tcp" in (b.get("ports") or [])
        proxy = None if status == "PROVISIONING" else {
            "host": "ssh.runpod.io", "port": 22, "username": f"{pod.id}-64411eb2",
            "command": f"ssh {pod.id}-64411eb2@ssh.runpod.io"}
        direct = None
        runtime: dict[str, Any] | None = None if status == "PROVISIONING" else {}
        if status == "RUNNING":
            runtime = self._runtime(pod, has_ssh)
            if has_ssh and self.fake.ssh_type == "tcp":
                f = self.fake
                direct = {"host": f.ssh_host, "port": f.ssh_port,
                          "username": f.ssh_user,
                          "command": f"ssh {f.ssh_user}@{f.ssh_host} -p {f.ssh_port}"}
        created = datetime.now(timezone.utc) - timedelta(
            seconds=self.fake.clock() - pod.created)
        return {
            "id": pod.id, "name": b["name"], "status": status,
            "actions": list(cat_actions(status)), "image": b.get("image", ""),
            "args": b.get("args", ""), "disk": b.get("disk", 50),
            "mounts": b.get("mounts", {}), "ports": list(b.get("ports") or []),
            "env": dict(b.get("env") or {}), "registry": b.get("registry"),
            "gpu": {"id": b["gpu"]["id"], "count": b["gpu"].get("count", 1)},
            "cloud": b.get("cloud", "SECURE"), "dataCenterId": pod.data_center,
            "cudaVersion": "12.8", "ssh": {"proxy": proxy, "direct": direct},
            "template": None,
            "cost": pod.cost if status != "EXITED" else 0.0,
            "locked": False, "runtime": runtime, "createdAt": _iso(created),
            "startedAt": self._started_at(pod) if status == "RUNNING" else None,
            "globalNetworking": {"enabled": False},
        }

    def _started_at(self, pod: FakePod) -> str:
        ago = self.fake.clock() - (pod.running_since or self.fake.clock())
        return _iso(datetime.now(timezone.utc) - timedelta(seconds=ago))

    def _runtime(self, pod: FakePod, has_ssh: bool) -> dict[str, Any]:
        count = pod.body["gpu"].get("count", 1)
        ports = []
        for spec in pod.body.get("ports") or []:
            number, _, kind = spec.partition("/")
            if spec == "22/tcp" and has_ssh:
                f = self.fake
                ports.append({"private": 22, "public": f.ssh_port, "type": f.ssh_type,
                              "ip": f.ssh_host})
            elif kind == "http":
                ports.append({"private": int(number), "public": None, "type": "http",
                              "ip": None})
        uptime = int(self.fake.clock() - (pod.running_since or self.fake.clock()))
        return {"uptime": uptime, "gpus": [{"util": 0, "memoryUtil": 0}] * count,
                "cpu": {"util": 1}, "memory": {"util": 2}, "ports": ports}

    def _list_pods(self, query: dict[str, str], **_: Any) -> Reply:
        pods = [self.pod_json(p) for p in self.fake.pods.values()]
        size = self.fake.page_size
        if not size:
            return Reply(200, {"pods": pods})
        start = int(query.get("cursor") or 0)
        page = pods[start:start + size]
        more = start + size < len(pods)
        return Reply(200, {"pods": page, "pagination": {
            "hasNextPage": more, "nextCursor": str(start + size) if more else None}})

    def _create(self, body: Any, **_: Any) -> Reply:
        errors, rule = cat.create_pod_problems(body)
        if errors:
            return problem(422, "Request validation failed.", errors)
        if rule:
            return problem(400, rule)
        gpu = self.fake.gpus.get(body["gpu"]["id"])
        if gpu is None:
            return problem(400, f"unknown gpu type {body['gpu']['id']!r}")
        placed = self._place(gpu, body)
        if isinstance(placed, Reply):
            return placed
        count = body["gpu"].get("count", 1)
        price = gpu["price"]["community" if body.get("cloud") == "COMMUNITY"
                             else "secure"]
        now = self.fake.clock()
        pod = _new_pod(body, now, placed, round(price * count, 4))
        self.fake.pods[pod.id] = pod
        key = (body.get("env") or {}).get("PUBLIC_KEY")
        if key and self.fake.authorize is not None:
            self.fake.authorize(str(key))  # what the image's start script does
        return Reply(201, self.pod_json(pod))

    def _place(self, gpu: dict, body: dict) -> str | Reply:
        """A data center with stock for this GPU, or the capacity 400."""
        cloud = body.get("cloud", "SECURE")
        if self.fake.stock.get((gpu["id"], cloud), "HIGH") == "NONE":
            return problem(400, cat.CAPACITY_DETAIL)
        network = (body.get("mounts") or {}).get("network")
        if network:
            volume = self.fake.volumes.get(network[0]["volumeId"])
            if volume is None:
                return problem(404, f"network volume {network[0]['volumeId']} not found")
            if volume["dataCenter"] not in gpu["_dcs"]:
                return problem(400, cat.CAPACITY_DETAIL)
            return volume["dataCenter"]
        wanted = body.get("dataCenterIds") or gpu["_dcs"]
        fits = [dc for dc in wanted if dc in gpu["_dcs"]]
        return fits[0] if fits else problem(400, cat.CAPACITY_DETAIL)

    def _pod(self, params: dict[str, str]) -> FakePod | Reply:
        pod = self.fake.pods.get(params["id"])
        return pod if pod is not None else problem(404, "pod not found")

    def _get_pod(self, params: dict[str, str], **_: Any) -> Reply:
        pod = self._pod(params)
        return pod if isinstance(pod, Reply) else Reply(200, self.pod_json(pod))

    def _update_pod(self, params: dict[str, str], body: Any, **_: Any) -> Reply:
        errors = cat.update_pod_problems(body)
        if errors:
            return problem(422, "Request validation failed.", errors)
        pod = self._pod(params)
        if isinstance(pod, Reply):
            return pod
        pod.body.update({k: v for k, v in body.items() if k not in ("locked",)})
        return Reply(200, self.pod_json(pod))

    def _delete_pod(self, params: dict[str, str], **_: Any) -> Reply:
        pod = self._pod(params)
        if isinstance(pod, Reply):
            return pod
        del self.fake.pods[pod.id]
        return Reply(204)

    def _action(self, params: dict[str, str], body: Any, **_: Any) -> Reply:
        action = body.get("action") if isinstance(body, dict) else None
        if action not in ("start", "stop", "restart", "terminate") or len(body) != 1:
            return problem(422, "Request validation failed.",
                           [f"$.action: value must be one of 'start', 'stop', "
                            f"'restart', 'terminate' (got {action!r})"])
        pod = self._pod(params)
        if isinstance(pod, Reply):
            return pod
        status = self.status_of(pod)
        if action not in cat_actions(status):
            return problem(409, f"action {action!r} is not valid for a pod in "
                           f"status {status}")
        if action == "terminate":
            del self.fake.pods[pod.id]
            return Reply(204)
        if action == "start" and pod.host_taken:
            return problem(400, cat.HOST_TAKEN_DETAIL)
        if action == "stop":
            pod.desired, pod.running_since = "EXITED", None
        else:  # start and restart walk the timeline again, on the same host
            pod.desired, pod.phase_start = "RUNNING", self.fake.clock()
            pod.running_since, pod.status_override = None, None
        return Reply(200, self.pod_json(pod))

    def _logs(self, params: dict[str, str], query: dict[str, str], headers: Any,
              **_: Any) -> Reply:
        pod = self._pod(params)
        if isinstance(pod, Reply):
            return pod
        events = [(f"{ts}/{n:012d}", ts, line) for n, (ts, line)
                  in enumerate(pod.logs, start=1)]
        last = headers.get("Last-Event-ID")
        if last:
            events = [e for e in events if e[0] > last]
        elif query.get("since"):
            events = [e for e in events if e[1] >= query["since"]]
        else:
            tail = int(query.get("tail", 100))
            events = events[-tail:] if tail else []
        text = "".join(
            f"id: {eid}\ndata: " + json.dumps({"ts": ts, "source": "container",
                                               "line": line}) + "\n\n"
            for eid, ts, line in events)
        return Reply(200, text, {"Cache-Control": "no-cache",
                                 "X-Accel-Buffering": "no"}, "text/event-stream")

    # -- catalog ----------------------------------------------------------------

    def _gpus(self, params: dict[str, str], query: dict[str, str], **_: Any) -> Reply:
        include, product = query.get("include"), query.get("product")
        if bool(include) != bool(product):
            return problem(400, "product is required with include=AVAILABILITY "
                           "and valid only with it")
        cloud = query.get("cloud", "SECURE")
        items = [self._gpu_json(g, cloud, bool(include))
                 for g in self.fake.gpus.values()]
        if "id" in params:
            found = [g for g in items if g["id"] == params["id"]]
            return Reply(200, found[0]) if found else problem(404, "gpu type not found")
        return Reply(200, {"gpus": items})

    def _gpu_json(self, gpu: dict, cloud: str, availability: bool) -> dict:
        out = {k: v for k, v in gpu.items() if not k.startswith("_")}
        if availability:
            level = self.fake.stock.get((gpu["id"], cloud), "HIGH")
            out["availability"] = level
            if level != "NONE":
                out["dataCenters"] = [{"id": dc, "name": cat.dc_name(dc),
                                       "availability": level} for dc in gpu["_dcs"]]
                out["cudaVersions"] = [{"version": "12.8", "available": True}]
        return out

    def _cpus(self, query: dict[str, str], **_: Any) -> Reply:
        cpus = [dict(c) for c in cat.CPUS]
        if query.get("include"):
            for cpu in cpus:
                cpu["availability"] = "MEDIUM"
        return Reply(200, {"cpus": cpus})

    def _datacenters(self, query: dict[str, str], **_: Any) -> Reply:
        dcs = [dict(d) for d in cat.DATA_CENTERS]
        if "GPU_AVAILABILITY" in (query.get("include") or ""):
            for dc in dcs:
                dc["gpuAvailability"] = [
                    {"id": g["id"], "name": g["name"], "availability": "HIGH"}
                    for g in self.fake.gpus.values() if dc["id"] in g["_dcs"]]
        return Reply(200, {"dataCenters": dcs})

    # -- network volumes, keys, billing ---------------------------------------------

    def _volumes(self, method: str, params: dict[str, str], body: Any,
                 **_: Any) -> Reply:
        volumes = self.fake.volumes
        if method == "POST":
            return self._create_volume(body)
        if "id" not in params:
            return Reply(200, {"networkVolumes": list(volumes.values())})
        if params["id"] not in volumes:
            return problem(404, "network volume not found")
        if method == "DELETE":
            del volumes[params["id"]]
            return Reply(204)
        return Reply(200, volumes[params["id"]])

    def _create_volume(self, body: Any) -> Reply:
        errors = cat.volume_problems(body)
        if errors:
            return problem(422, "Request validation failed.", errors)
        dc = next((d for d in cat.DATA_CENTERS if d["id"] == body["dataCenter"]), None)
        if dc is None or not dc["networkVolumeTypes"]:
            able = [d["id"] for d in cat.DATA_CENTERS if d["networkVolumeTypes"]]
            return problem(400, f"data center {body['dataCenter']!r} has no network "
                           f"volumes; supported: {', '.join(able)}")
        volume = {"id": secrets.token_hex(5), "name": body["name"],
                  "size": body["size"], "dataCenter": body["dataCenter"],
                  "type": body.get("type") or dc["networkVolumeTypes"][0]}
        self.fake.volumes[volume["id"]] = volume
        return Reply(201, volume)

    def _ssh_keys(self, method: str, body: Any, **_: Any) -> Reply:
        if method == "PUT":
            errors = cat._closed(body, {"keys"}, "$", required=("keys",))
            keys = body.get("keys") if isinstance(body, dict) else None
            if not errors and not isinstance(keys, list):
                errors = ["$.keys: expected array"]
            errors += [f"$.keys[{i}]: does not match the key pattern"
                       for i, k in enumerate(keys or [])
                       if not isinstance(k, str) or not cat.SSH_KEY.match(k)]
            if errors:
                return problem(422, "Request validation failed.", errors)
            self.fake.ssh_keys = list(keys)
        return Reply(200, {"keys": list(self.fake.ssh_keys)})

    def _billing(self, query: dict[str, str], **_: Any) -> Reply:
        now = datetime.now(timezone.utc).replace(microsecond=0)
        start = _iso(now.replace(hour=0, minute=0, second=0))
        end = _iso(now.replace(hour=0, minute=0, second=0) + timedelta(days=1))
        records = []
        for pod in self.fake.pods.values():
            if query.get("podId") and pod.id != query["podId"]:
                continue
            hours = (self.fake.clock() - pod.created) / 3600
            amount = round(pod.cost * hours, 6)
            records.append({"startTime": start, "endTime": end, "podId": pod.id,
                            "totalAmount": amount, "gpuAmount": amount,
                            "cpuAmount": 0.0, "diskAmount": 0.0})
        total = round(sum(r["totalAmount"] for r in records), 6)
        return Reply(200, {"records": records, "metadata": {
            "query": {"startTime": start, "endTime": end,
                      "bucketSize": query.get("bucketSize", "day"),
                      "podId": query.get("podId")},
            "recordCount": len(records),
            "uniquePodCount": len({r["podId"] for r in records}),
            "totals": {"totalAmount": total, "gpuAmount": total, "cpuAmount": 0.0,
                       "diskAmount": 0.0}}})


def cat_actions(status: str) -> list[str]:
    return ACTIONS.get(status, ["terminate"])


def _new_pod(body: dict, now: float, dc: str, cost: float) -> FakePod:
    stamp = _iso(datetime.now(timezone.utc))
    pod_id = secrets.token_hex(7)[:14]
    lines = [(stamp, "pulling image " + str(body.get("image"))),
             (stamp, "container started"), (stamp, "sshd listening on 22")]
    return FakePod(id=pod_id, body=json.loads(json.dumps(body)), created=now,
                   data_center=dc, cost=cost, phase_start=now, logs=lines)
