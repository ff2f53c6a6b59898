"""The fake Northflank server, spoken to through the official SDK and plain httpx."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import httpx
import northflank
import pytest

from sindri_jupyter.testing.fake_northflank import DUPLICATE, NOT_PAUSED, FakeNorthflank

TOKEN = "test-token"


class Clock:
    """A hand-moved monotonic clock shared by the fake and the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(coro):
    return asyncio.run(coro)


def service_body(name: str = "web-app", **extra) -> dict:
    body = {"name": name, "billing": {"deploymentPlan": "nf-compute-50"},
            "deployment": {"instances": 1, "external": {"imagePath": "nginx:1.27"}}}
    body.update(extra)
    return body


@pytest.fixture
def fake():
    with FakeNorthflank() as server:
        yield server


async def sdk_call(fake: FakeNorthflank, fn):
    async with httpx.AsyncClient() as http:
        client = northflank.AsyncApiClient(api_token=TOKEN, base_url=fake.url,
                                           async_http_client=http)
        return await fn(client)


def with_project(fake: FakeNorthflank, name: str = "demo", region: str = "us-central"):
    return run(sdk_call(fake, lambda c: c.create.project(
        data={"name": name, "region": region})))


def api_error(fake, fn) -> northflank.ApiCallError:
    with pytest.raises(northflank.ApiCallError) as caught:
        run(sdk_call(fake, fn))
    return caught.value


def test_success_and_error_envelopes(fake):
    made = with_project(fake, "My Project")

    err = api_error(fake, lambda c: c.create.project(
        data={"name": "9 lives", "region": "us-central"}))

    assert made.data["id"] == "my-project"
    assert err.status == 400 and err.message == "Invalid project name"
    assert err.id and err.details == {"name": ["must match pattern"]}


def test_missing_or_wrong_token_is_401_in_the_error_envelope(fake):
    no_token = httpx.get(f"{fake.url}/v1/projects")
    wrong = httpx.get(f"{fake.url}/v1/projects", headers={"Authorization": "Bearer x"})

    assert no_token.status_code == wrong.status_code == 401
    assert no_token.json()["error"]["status"] == 401
    assert httpx.get(f"{fake.url}/v1/plans").status_code == 200  # public


def test_team_routes_reach_the_same_resources(fake):
    with_project(fake, "demo")

    answer = httpx.get(f"{fake.url}/v1/teams/any-team/projects/demo",
                       headers={"Authorization": f"Bearer {TOKEN}"})

    assert answer.status_code == 200 and answer.json()["data"]["id"] == "demo"


def test_pagination_by_cursor_and_page_and_sdk_all(fake):
    for i in range(7):
        with_project(fake, f"project-{i}")
    fake.requests.clear()

    first = run(sdk_call(fake, lambda c: c.list.projects(per_page=3)))
    everything = run(sdk_call(fake, lambda c: c.list.projects.all(per_page=3)))
    by_page = httpx.get(f"{fake.url}/v1/projects", params={"per_page": 3, "page": 3},
                        headers={"Authorization": f"Bearer {TOKEN}"}).json()

    assert len(first.data["projects"]) == 3 and first.pagination.has_next_page
    assert [p["id"] for p in everything.data["projects"]] == [
        f"project-{i}" for i in range(7)]
    assert fake.count("list_projects") == 1 + 3 + 1
    assert by_page["pagination"] == {"hasNextPage": False, "count": 1}


def test_rate_limit_headers_429_and_window_reset():
    clock = Clock()
    with FakeNorthflank(rate_limit=3, clock=clock) as fake:
        answers = [httpx.get(f"{fake.url}/v1/projects",
                             headers={"Authorization": f"Bearer {TOKEN}"})
                   for _ in range(4)]
        clock.now += 3600
        after_reset = httpx.get(f"{fake.url}/v1/projects",
                                headers={"Authorization": f"Bearer {TOKEN}"})

    assert [a.headers["x-ratelimit-remaining"] for a in answers[:3]] == ["2", "1", "0"]
    assert answers[3].status_code == 429
    assert answers[3].headers["Retry-After"] == answers[3].headers["x-ratelimit-reset"]
    assert answers[0].headers["x-ratelimit-limit"] == "3"
    assert after_reset.status_code == 200
    assert after_reset.headers["x-ratelimit-remaining"] == "2"


def test_rollout_goes_pending_in_progress_completed_on_the_clock():
    clock = Clock()
    with FakeNorthflank(pending_seconds=10, progress_seconds=20, clock=clock) as fake:
        with_project(fake)
        run(sdk_call(fake, lambda c: c.create.service.deployment(
            project_id="demo", data=service_body())))
        seen = []
        for step in (0, 15, 40):
            clock.now += step
            got = run(sdk_call(fake, lambda c: c.get.service(
                project_id="demo", service_id="web-app")))
            seen.append(got.data["status"]["deployment"]["status"])

    assert seen == ["PENDING", "IN_PROGRESS", "COMPLETED"]


def test_pause_and_resume_semantics(fake):
    with_project(fake)
    run(sdk_call(fake, lambda c: c.create.service.deployment(
        project_id="demo", data=service_body(
            deployment={"instances": 2, "external": {"imagePath": "nginx:1.27"}}))))

    err = api_error(fake, lambda c: c.resume.service(
        project_id="demo", service_id="web-app", data={}))
    run(sdk_call(fake, lambda c: c.pause.service(project_id="demo", service_id="web-app")))
    paused = run(sdk_call(fake, lambda c: c.get.service(
        project_id="demo", service_id="web-app"))).data
    run(sdk_call(fake, lambda c: c.resume.service(
        project_id="demo", service_id="web-app", data={})))
    resumed = run(sdk_call(fake, lambda c: c.get.service(
        project_id="demo", service_id="web-app"))).data

    assert err.status == 409 and err.message == NOT_PAUSED
    assert paused["servicePaused"] is True and paused["deployment"]["instances"] == 0
    assert resumed["servicePaused"] is False and resumed["deployment"]["instances"] == 2


def test_names_deriving_the_same_id_conflict(fake):
    with_project(fake)
    run(sdk_call(fake, lambda c: c.create.service.deployment(
        project_id="demo", data=service_body("Web App"))))

    err = api_error(fake, lambda c: c.create.service.deployment(
        project_id="demo", data=service_body("web-app")))

    assert err.status == 409 and err.message == DUPLICATE.format(kind="service")


@pytest.mark.parametrize("name", ["1st-service", "ab", "a" * 55, "bad_name", "x--y"])
def test_service_name_grammar_and_length(fake, name):
    with_project(fake)

    err = api_error(fake, lambda c: c.create.service.deployment(
        project_id="demo", data=service_body(name)))

    assert err.status == 400 and "service name" in err.message


def test_gpu_needs_a_gpu_plan_the_region_and_an_allowed_count(fake):
    with_project(fake, "eu-box", region="europe-west")
    with_project(fake, "us-box", region="us-central")
    gpu = {"enabled": True, "configuration": {"gpuType": "h100-80", "gpuCount": 1}}
    deployment = {"instances": 1, "external": {"imagePath": "nginx:1.27"}, "gpu": gpu}

    wrong_region = api_error(fake, lambda c: c.create.service.deployment(
        project_id="eu-box", data=service_body(
            billing={"deploymentPlan": "nf-gpu-h100-80-1g"}, deployment=deployment)))
    cpu_plan = api_error(fake, lambda c: c.create.service.deployment(
        project_id="us-box", data=service_body(deployment=deployment)))
    gpu["configuration"]["gpuCount"] = 3
    bad_count = api_error(fake, lambda c: c.create.service.deployment(
        project_id="us-box", data=service_body(
            billing={"deploymentPlan": "nf-gpu-h100-80-1g"}, deployment=deployment)))

    assert "not available in region europe-west" in wrong_region.message
    assert "not a GPU plan" in cpu_plan.message
    assert bad_count.status == 400 and "GPU count 3" in bad_count.message


def test_image_without_tag_is_unverifiable(fake):
    with_project(fake)

    err = api_error(fake, lambda c: c.create.service.deployment(
        project_id="demo", data=service_body(
            deployment={"instances": 1, "external": {"imagePath": "nginx"}})))

    assert err.status == 400 and err.message == "Unable to verify external image"


def test_injected_429_then_success(fake):
    with_project(fake)
    fake.inject("create_service", status=429, retry_after=1, times=1)

    first = httpx.post(f"{fake.url}/v1/projects/demo/services/deployment",
                       json=service_body(), headers={"Authorization": f"Bearer {TOKEN}"})
    second = httpx.post(f"{fake.url}/v1/projects/demo/services/deployment",
                        json=service_body(), headers={"Authorization": f"Bearer {TOKEN}"})

    assert first.status_code == 429 and first.headers["Retry-After"] == "1"
    assert first.json()["error"]["status"] == 429
    assert second.status_code == 200


def test_injected_failure_after_creating_leaves_the_service(fake):
    with_project(fake)
    fake.inject("create_service", status=500, after=True)

    err = api_error(fake, lambda c: c.create.service.deployment(
        project_id="demo", data=service_body()))

    assert err.status == 500
    assert ("demo", "web-app") in fake.services


def test_injected_drop_and_delay(fake):
    with_project(fake)
    fake.inject("create_service", drop=True, after=True)
    fake.inject("list_projects", delay=0.3)
    auth = {"Authorization": f"Bearer {TOKEN}"}

    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{fake.url}/v1/projects/demo/services/deployment",
                   json=service_body(), headers=auth)
    slow = httpx.get(f"{fake.url}/v1/projects", headers=auth)

    assert ("demo", "web-app") in fake.services
    assert slow.status_code == 200 and slow.elapsed.total_seconds() >= 0.3


def test_inject_refuses_an_unknown_operation(fake):
    with pytest.raises(ValueError, match="unknown operation"):
        fake.inject("create_servce", status=500)


def test_catalogue_follows_the_reference(fake):
    plans = run(sdk_call(fake, lambda c: c.list.plans())).data["plans"]
    regions = run(sdk_call(fake, lambda c: c.list.regions())).data["regions"]

    by_id = {p["id"]: p for p in plans}
    gpus = {r["id"]: {d["id"] for d in r["gpuDevices"]} for r in regions}
    assert by_id["nf-compute-200"]["cpuResource"] == 2
    assert by_id["nf-compute-200"]["ramResource"] == 4096
    assert "nf-gpu-h200-141-8g" in by_id and "nf-gpu-h200-141-1g" not in by_id
    assert "h100-80" in gpus["us-central"] and "h100-80" not in gpus["europe-west"]
    assert gpus["africa-south"] == set()


def test_ssh_identities_add_conflict_update_delete(fake):
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake test"
    made = run(sdk_call(fake, lambda c: c.add.ssh_identities(
        data={"name": "sindri-demo", "sshPublicKeys": [{"key": key}]})))

    dup = api_error(fake, lambda c: c.add.ssh_identities(
        data={"name": "sindri-demo", "sshPublicKeys": [{"key": key}]}))
    run(sdk_call(fake, lambda c: c.update.ssh_identities(
        identity_id="sindri-demo", data={"sshPublicKeys": [{"key": key + "2"}]})))
    listed = run(sdk_call(fake, lambda c: c.list.ssh_identities())).data
    run(sdk_call(fake, lambda c: c.delete.ssh_identities(identity_id="sindri-demo")))

    assert made.data["id"] == "sindri-demo" and dup.status == 409
    assert listed["identities"][0]["sshPublicKeys"] == [{"key": key + "2"}]
    assert fake.identities == {}


def test_containers_and_logs_of_a_failed_rollout(fake):
    with_project(fake)
    run(sdk_call(fake, lambda c: c.create.service.deployment(
        project_id="demo", data=service_body())))
    fake.fail_rollout("demo", "web-app", "Back-off pulling image",
                      logs=["stderr F exec format error"])
    auth = {"Authorization": f"Bearer {TOKEN}"}

    containers = run(sdk_call(fake, lambda c: c.get.service.containers(
        project_id="demo", service_id="web-app"))).data["containers"]
    logs = httpx.get(f"{fake.url}/v1/projects/demo/services/web-app/logs",
                     params={"lineLimit": 1}, headers=auth).json()["data"]

    assert containers[0]["status"] == "TASK_FAILED"
    assert logs == [{"containerId": "web-app-0-abcde",
                     "log": "stderr F exec format error",
                     "ts": "2026-01-01T00:00:00.000Z"}]


def test_delete_project_with_children_needs_the_flag(fake):
    with_project(fake)
    run(sdk_call(fake, lambda c: c.create.service.deployment(
        project_id="demo", data=service_body())))

    refused = api_error(fake, lambda c: c.delete.project(project_id="demo"))
    run(sdk_call(fake, lambda c: c.delete.project(
        project_id="demo", delete_child_objects=True)))

    assert refused.status == 409 and fake.projects == {} and fake.services == {}


def test_runs_standalone_as_a_module():
    process = subprocess.Popen(
        [sys.executable, "-m", "sindri_jupyter.testing.fake_northflank", "--port", "0"],
        stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
        answer = httpx.get(f"{url}/v1/regions", timeout=10)
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert answer.status_code == 200 and len(answer.json()["data"]["regions"]) == 16
