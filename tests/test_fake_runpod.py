"""The fake RunPod itself: wire format, timeline, rules and fault injection.

Spoken to with plain httpx, as any client would; no sindri code in between.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from email.utils import parsedate_to_datetime

import httpx
import pytest

from sindri_jupyter.errors import UsageError
from sindri_jupyter.testing.fake_runpod import FakeRunPod

A6000 = "NVIDIA RTX A6000"
POD = {"name": "p", "image": "img:1", "gpu": {"id": A6000, "count": 1},
       "ports": ["22/tcp", "8888/http"]}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def fake(clock):
    with FakeRunPod(ssh_host="127.0.0.1", ssh_port=2222, clock=clock) as server:
        yield server


@pytest.fixture
def http(fake):
    with httpx.Client(base_url=fake.url,
                      headers={"Authorization": f"Bearer {fake.api_key}"}) as client:
        yield client


def test_missing_token_is_a_problem_json_401_without_rate_limits(fake):
    answer = httpx.get(f"{fake.url}/v2/pods")

    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json() == {"title": "Unauthorized", "status": 401,
                             "detail": "missing bearer token"}
    assert answer.headers["x-request-id"] and "ratelimit" not in answer.headers


def test_answers_carry_request_id_and_rate_limit_headers(http):
    first, second = http.get("/v2/pods"), http.get("/v2/pods")

    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert '"minute";r=599' in first.headers["ratelimit"]
    assert '"minute";r=598' in second.headers["ratelimit"]
    assert '"hour";q=30000;w=3600' in first.headers["ratelimit-policy"]


def test_pods_walk_the_timeline_with_runtime_null_then_empty_then_filled(
        fake, http, clock):
    fake.provision_seconds, fake.start_seconds = 10, 10
    pod_id = http.post("/v2/pods", json=POD).json()["id"]

    seen = []
    for _ in range(3):
        pod = http.get(f"/v2/pods/{pod_id}").json()
        seen.append((pod["status"], pod["runtime"], pod["ssh"]["direct"]))
        clock.now += 10

    assert seen[0] == ("PROVISIONING", None, None)
    assert seen[1] == ("STARTING", {}, None)
    status, runtime, direct = seen[2]
    assert status == "RUNNING"
    assert {"private": 22, "public": 2222, "type": "tcp",
            "ip": "127.0.0.1"} in runtime["ports"]
    assert direct == {"host": "127.0.0.1", "port": 2222, "username": "root",
                      "command": "ssh root@127.0.0.1 -p 2222"}


def test_unknown_body_fields_are_a_422_naming_them(http):
    answer = http.post("/v2/pods", json={**POD, "gpuCount": 1, "cloudType": "SECURE"})

    assert answer.status_code == 422
    assert answer.json()["errors"] == [
        "$: additional properties 'cloudType', 'gpuCount' not allowed"]


@pytest.mark.parametrize("change,detail", [
    ({"cpu": {"id": "cpu3c", "vcpuCount": 2}}, "exactly one of gpu or cpu"),
    ({"mounts": {"persistent": {"size": 20, "path": "/w"},
                 "network": [{"volumeId": "v", "path": "/n"}]}}, "mutually exclusive"),
])
def test_cross_field_rules_are_a_400(http, change, detail):
    answer = http.post("/v2/pods", json={**POD, **change})

    assert answer.status_code == 400 and detail in answer.json()["detail"]


def test_actions_follow_the_table_409_otherwise_and_reset_is_422(http):
    pod_id = http.post("/v2/pods", json=POD).json()["id"]

    start_running = http.post(f"/v2/pods/{pod_id}/action", json={"action": "start"})
    stopped = http.post(f"/v2/pods/{pod_id}/action", json={"action": "stop"})
    reset = http.post(f"/v2/pods/{pod_id}/action", json={"action": "reset"})
    terminated = http.post(f"/v2/pods/{pod_id}/action", json={"action": "terminate"})

    assert start_running.status_code == 409
    assert stopped.json()["status"] == "EXITED"
    assert stopped.json()["actions"] == ["start", "terminate"]
    assert stopped.json()["cost"] == 0.0
    assert reset.status_code == 422
    assert terminated.status_code == 204 and terminated.content == b""
    assert http.get(f"/v2/pods/{pod_id}").status_code == 404


def test_injected_429_carries_retry_after_in_both_forms(fake, http):
    fake.inject("list_pods", status=429, retry_after=3)
    fake.inject("list_pods", status=429, retry_after=60, retry_after_date=True)

    seconds, dated, fine = (http.get("/v2/pods") for _ in range(3))

    assert seconds.status_code == 429 and seconds.headers["retry-after"] == "3"
    assert parsedate_to_datetime(dated.headers["retry-after"]).tzinfo is not None
    assert fine.status_code == 200


def test_a_create_can_fail_after_creating(fake, http):
    fake.inject("create", status=500, after=True)

    answer = http.post("/v2/pods", json=POD)

    assert answer.status_code == 500
    assert len(http.get("/v2/pods").json()["pods"]) == 1


def test_a_dropped_connection_gives_no_answer_and_is_logged(fake, http):
    fake.inject("create", drop=True, after=True)

    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/v2/pods", json=POD)

    assert fake.requests[-1].status == 0
    assert len(fake.live_pods()) == 1


def test_slow_answers_are_slow(fake, http):
    fake.inject("gpus", delay=0.3)

    started = time.monotonic()
    http.get("/v2/catalog/gpus")

    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("status", [400, 401, 402, 403, 409, 503])
def test_injected_statuses_are_problem_json(fake, http, status):
    fake.inject("create", status=status)

    answer = http.post("/v2/pods", json=POD)

    assert answer.status_code == status
    assert answer.json()["status"] == status and answer.json()["detail"]
    assert fake.live_pods() == []


def test_capacity_follows_stock_and_pinned_data_centers(fake, http):
    fake.set_stock(A6000, "SECURE", "NONE")

    no_stock = http.post("/v2/pods", json=POD)
    community = http.post("/v2/pods", json={**POD, "cloud": "COMMUNITY"})
    pinned = http.post("/v2/pods", json={**POD, "cloud": "COMMUNITY",
                                         "dataCenterIds": ["CA-MTL-1"]})

    assert no_stock.status_code == 400
    assert "no longer any instances" in no_stock.json()["detail"]
    assert community.status_code == 201
    assert pinned.status_code == 400


def test_fault_times_and_request_log_counts(fake, http):
    fake.inject("get_pod", status=503, times=2)

    statuses = [http.get("/v2/pods/x").status_code for _ in range(3)]

    assert statuses == [503, 503, 404]
    assert fake.count("GET", "/v2/pods/*") == 3
    with pytest.raises(UsageError):
        fake.inject("reboot", status=500)


def test_list_is_plain_or_paginated(fake, http):
    for i in range(3):
        http.post("/v2/pods", json={**POD, "name": f"p{i}"})

    plain = http.get("/v2/pods").json()
    fake.page_size = 2
    first = http.get("/v2/pods", params={"limit": 2}).json()
    second = http.get("/v2/pods", params={"cursor": first["pagination"]["nextCursor"]})

    assert set(plain) == {"pods"} and len(plain["pods"]) == 3
    assert len(first["pods"]) == 2 and first["pagination"]["hasNextPage"]
    assert second.json()["pagination"] == {"hasNextPage": False, "nextCursor": None}


def test_catalog_needs_product_with_include_and_hides_availability_without(http):
    bare = http.get("/v2/catalog/gpus").json()["gpus"]
    missing_product = http.get("/v2/catalog/gpus", params={"include": "AVAILABILITY"})
    full = http.get("/v2/catalog/gpus", params={"include": "AVAILABILITY",
                                                "product": "POD"}).json()["gpus"]

    assert all("availability" not in g for g in bare)
    assert missing_product.status_code == 400
    assert all(g["availability"] in ("NONE", "LOW", "MEDIUM", "HIGH") for g in full)


def test_v1_paths_are_gone_and_unknown_paths_404(http):
    assert http.get("/v1/pods").status_code == 410
    assert http.get("/v2/networkvolumes").status_code == 404
    not_allowed = http.put("/v2/pods")
    assert not_allowed.status_code == 405 and "GET" in not_allowed.headers["allow"]


def test_logs_honour_last_event_id(http):
    pod_id = http.post("/v2/pods", json=POD).json()["id"]
    stream = http.get(f"/v2/pods/{pod_id}/logs").text
    first_id = stream.splitlines()[0].removeprefix("id: ")

    rest = http.get(f"/v2/pods/{pod_id}/logs", headers={"Last-Event-ID": first_id})

    assert rest.headers["content-type"] == "text/event-stream"
    assert stream.count("id: ") == 3 and rest.text.count("id: ") == 2


def test_volumes_need_a_data_center_that_has_them(http):
    refused = http.post("/v2/network-volumes",
                        json={"name": "v", "size": 20, "dataCenter": "CA-MTL-1"})
    v1_field = http.post("/v2/network-volumes",
                         json={"name": "v", "size": 20, "dataCenterId": "US-KS-2"})

    assert refused.status_code == 400 and "US-KS-2" in refused.json()["detail"]
    assert v1_field.status_code == 422


def test_runs_as_a_module_for_offline_rehearsal():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sindri_jupyter.testing.fake_runpod", "--port",
         str(port), "--ssh-port", "2222", "--provision-seconds", "0"],
        stdout=subprocess.PIPE, text=True)
    try:
        banner = proc.stdout.readline()
        answer = httpx.get(f"http://127.0.0.1:{port}/v2/catalog/gpus",
                           headers={"Authorization": "Bearer fake-runpod-key"})
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    assert f"127.0.0.1:{port}" in banner
    assert answer.status_code == 200 and answer.json()["gpus"]
