"""Requests the client sends and answers the fake serves, checked against RunPod's spec.

A recording transport sits under the real client (and under a raw httpx client
for bodies the client refuses to send). Every recorded request body is
validated against the operation's requestBody schema, and every answer against
the schema of its status (or ``default``), with $refs resolved in the vendor file.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from sindri_jupyter.core.types import Handle
from sindri_jupyter.errors import ProviderAPIError
from sindri_jupyter.providers.runpod.client import RunPodClient
from sindri_jupyter.providers.runpod.provider import RunPodProvider
from sindri_jupyter.testing.fake_runpod import FakeRunPod
from tests.test_runpod_client import config

# A copy of ../shared/vendor/runpod-rest-v2.openapi.json, RunPod's published file.
SPEC_PATH = Path(__file__).parent / "data" / "runpod-rest-v2.openapi.json"
BASE = "urn:runpod-openapi"



class Recorder(httpx.AsyncBaseTransport):
    """Keeps (method, path, request JSON, status, content type, answer) per call."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.calls: list[dict] = []
        self.invalid_on_purpose: set[int] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        self.calls.append({
            "method": request.method, "path": request.url.path,
            "body": json.loads(request.content) if request.content else None,
            "status": response.status_code,
            "type": response.headers.get("content-type", "").split(";")[0],
            "headers": dict(response.headers), "content": content,
        })
        return httpx.Response(response.status_code, headers=response.headers,
                              content=content, request=request)


@pytest.fixture(scope="module")
def spec():
    return json.loads(SPEC_PATH.read_text())


def operation(spec, method: str, path: str) -> dict:
    for template, item in spec["paths"].items():
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", template)
        if re.fullmatch(pattern, path) and method.lower() in item:
            return item[method.lower()]
    raise LookupError(f"{method} {path} is not in the spec")


def response_ref(spec, op: dict, status: int, content_type: str) -> str | None:
    answer = op["responses"].get(str(status)) or op["responses"]["default"]
    if "$ref" in answer:
        answer = spec["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    media = (answer.get("content") or {}).get(content_type)
    assert media is not None or not answer.get("content"), \
        f"{status} answered as {content_type}, the spec says {list(answer['content'])}"
    return None if media is None else json.dumps(media["schema"])


def scenario(recorder: Recorder, fake: FakeRunPod) -> None:
    """Every client call, the provider's create bodies and the error answers."""

    async def go():
        client = RunPodClient(fake.api_key, fake.url, transport=recorder)
        provider = RunPodProvider(client=client)
        volume = await client.create_network_volume("data", 20, "US-KS-2", "STANDARD")
        net = await provider.create(config(network_volume_id=volume.id, ports=[
            "8888/http"], data_center_ids=["US-KS-2"]), Handle(
                "runpod", "a", "m-1", data={"public_key": "ssh-ed25519 AAAA x"}))
        disk = await provider.create(config(volume_in_gb=20, container_disk_in_gb=30,
                                            cloud_type="COMMUNITY"), Handle("runpod",
                                                                            "b", "m-2"))
        await provider.plan(config())
        await client.update_pod(net.resource_id, {"name": "n2", "env": {"A": "1"},
                                                  "ports": ["22/tcp"], "locked": False})
        for action in ("stop", "start", "restart"):
            await client.pod_action(net.resource_id, action)
        await client.pod_logs(net.resource_id, tail=2)
        await client.list_pods()
        await client.gpu_types(availability=False)
        await client.cpu_types(availability=True)
        await client.data_centers(gpu_availability=True)
        await client.list_network_volumes()
        await client.get_network_volume(volume.id)
        await client.set_ssh_keys(["ssh-ed25519 AAAAC3Nza me@example.com"])
        await client.ssh_keys()
        await client.pod_billing(pod_id=net.resource_id, last_n=2)
        await client.pod_action(disk.resource_id, "terminate")
        await client.delete_pod(net.resource_id)
        await client.delete_network_volume(volume.id)
        await errors(client, recorder, fake)
        await client.aclose()

    asyncio.run(go())


async def errors(client: RunPodClient, recorder: Recorder, fake: FakeRunPod) -> None:
    fake.inject("create", status=400)
    fake_calls = [
        lambda: client.get_pod("missing"),  # 404
        lambda: client.create_pod({"name": "x", "image": "i",
                                   "gpu": {"id": "NVIDIA RTX A6000", "count": 1},
                                   "cloud": "SECURE"}),  # capacity 400
    ]
    for call in fake_calls:
        with pytest.raises(ProviderAPIError):
            await call()
    async with httpx.AsyncClient(base_url=client.base_url, transport=recorder,
                                 headers={"Authorization": "Bearer wrong"}) as raw:
        await raw.get("/v2/pods")  # 401
    async with httpx.AsyncClient(base_url=client.base_url, transport=recorder,
                                 headers={"Authorization": "Bearer fake-runpod-key"}
                                 ) as raw:
        recorder.invalid_on_purpose.add(len(recorder.calls))
        await raw.post("/v2/pods", json={"name": "x", "imageName": "i"})  # 422
        await raw.get("/v2/catalog/gpus", params={"include": "AVAILABILITY"})  # 400
        await raw.get("/v2/catalog/gpus/NVIDIA%20RTX%20A6000")


@pytest.fixture(scope="module")
def recorded():
    recorder = Recorder()
    with FakeRunPod(ssh_port=2222) as fake:
        scenario(recorder, fake)
    return recorder


def test_scenario_covers_every_operation_the_client_uses(recorded):
    seen = {(c["method"], re.sub(r"/v2/(pods|network-volumes)/[^/]+", r"/v2/\1/{id}",
                                 c["path"])) for c in recorded.calls}

    for expected in [("POST", "/v2/pods"), ("GET", "/v2/pods"),
                     ("GET", "/v2/pods/{id}"), ("PATCH", "/v2/pods/{id}"),
                     ("DELETE", "/v2/pods/{id}"), ("POST", "/v2/pods/{id}/action"),
                     ("GET", "/v2/pods/{id}/logs"), ("GET", "/v2/catalog/gpus"),
                     ("GET", "/v2/catalog/cpus"), ("GET", "/v2/catalog/datacenters"),
                     ("POST", "/v2/network-volumes"), ("GET", "/v2/network-volumes"),
                     ("GET", "/v2/network-volumes/{id}"),
                     ("DELETE", "/v2/network-volumes/{id}"),
                     ("GET", "/v2/account/ssh-keys"), ("PUT", "/v2/account/ssh-keys"),
                     ("GET", "/v2/billing/pods")]:
        assert expected in seen
    assert {c["status"] for c in recorded.calls} >= {200, 201, 204, 400, 401, 404, 422}


def test_every_request_body_matches_the_spec(spec, recorded):
    checked = 0
    for index, call in enumerate(recorded.calls):
        if call["body"] is None or index in recorded.invalid_on_purpose:
            continue
        op = operation(spec, call["method"], call["path"])
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        errors = list(Draft202012Validator(
            {**schema, "$ref": f"{BASE}{schema['$ref']}"} if "$ref" in schema
            else schema, registry=_registry(spec)).iter_errors(call["body"]))
        assert not errors, f"{call['method']} {call['path']}: {errors[0].message}"
        checked += 1

    assert checked >= 10


def test_every_answer_of_the_fake_matches_the_spec(spec, recorded):
    for call in recorded.calls:
        op = operation(spec, call["method"], call["path"])
        schema = response_ref(spec, op, call["status"], call["type"])
        if call["status"] == 204:
            assert call["content"] == b""
            continue
        assert schema is not None, f"{call['path']} {call['status']} has no schema"
        instance = call["content"].decode() if call["type"] == "text/event-stream" \
            else json.loads(call["content"])
        resolved = json.loads(schema)
        if "$ref" in resolved:
            resolved = {"$ref": f"{BASE}{resolved['$ref']}"}
        errors = list(Draft202012Validator(resolved, registry=_registry(spec))
                      .iter_errors(instance))
        assert not errors, f"{call['method']} {call['path']} {call['status']}: " \
            f"{errors[0].message}"


def test_authenticated_answers_carry_request_id_and_rate_limits(recorded):
    for call in recorded.calls:
        assert call["headers"].get("x-request-id")
        if call["status"] != 401:
            assert '"minute";r=' in call["headers"]["ratelimit"]
            assert "w=60" in call["headers"]["ratelimit-policy"]


def _registry(spec) -> Registry:
    return Registry().with_resource(BASE, Resource(spec, specification=DRAFT202012))
