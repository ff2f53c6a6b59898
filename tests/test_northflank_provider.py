"""NorthflankProvider against the fake Northflank, through the real SDK.

The helpers at the top (``Clock``, ``config``, ``provider_for``, ``handle``) are
shared with the other Northflank test files.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from types import SimpleNamespace as NS

import asyncssh
import pytest

from sindri_jupyter.core.http import RetryPolicy
from sindri_jupyter.core.types import Handle, State
from sindri_jupyter.errors import (
    AuthError,
    ConfigError,
    OutcomeUnknownError,
    ProviderAPIError,
)
from sindri_jupyter.providers.northflank import NorthflankProvider, names
from sindri_jupyter.providers.northflank.api import NorthflankApi
from sindri_jupyter.providers.northflank.cli import SSHProxy
from sindri_jupyter.testing.fake_northflank import FakeNorthflank

TOKEN = "test-token"
STANDIN = Path(__file__).parent / "northflank_cli_standin"
IMAGE = "pytorch/pytorch:2.0.1-cuda11.8-cudnn8-runtime"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


class Clock:
    """Monotonic seconds moved by hand; shared by the fake and the provider."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


async def no_sleep(seconds: float) -> None:
    """Retry waits are observed in the fake's request log, never waited for."""


def run(coro):
    return asyncio.run(coro)


def config(name="ml-training", *, gpu=None, cpu=None, memory_gb=None, image=IMAGE,
           env=None, **northflank) -> NS:
    northflank.setdefault("project_name", "research")
    northflank.setdefault("region", "us-central")
    resources = NS(gpu=NS(**gpu) if gpu else None, cpu=cpu, memory_gb=memory_gb,
                   disk_gb=None)
    return NS(name=name, deployment=NS(image=image, env=env or {}, resources=resources),
              providers=NS(northflank=NS(**northflank)))


def web_app() -> NS:
    """The foundation issue's second example: a web app with autoscaling."""
    return config("web-app", compute_plan="nf-compute-50", project_name="my-project",
                  instances=1, ports=[8080], image="nginx:1.27",
                  auto_scaling=NS(enabled=True, min_instances=1, max_instances=3,
                                  target_cpu_percent=70))


def provider_for(fake: FakeNorthflank, clock=None, **kw) -> NorthflankProvider:
    api = NorthflankApi(TOKEN, fake.url, sleep=no_sleep, clock=clock or fake.clock,
                        policy=RetryPolicy(max_attempts=3, base_delay=0.01))
    kw.setdefault("executable", str(STANDIN / "northflank"))
    return NorthflankProvider(api=api, **kw)


def handle(name="ml-training", marker="m0001", key=KEY) -> Handle:
    return Handle("northflank", name, marker, data={"public_key": key} if key else {})


async def closing(provider: NorthflankProvider, coro):
    try:
        return await coro
    finally:
        await provider._api.aclose()


@pytest.fixture
def fake():
    with FakeNorthflank() as server:
        yield server


def test_plan_picks_the_smallest_plan_covering_cpu_and_memory(fake):
    provider = provider_for(fake)

    plan = run(closing(provider, provider.plan(config(cpu=2, memory_gb=3))))

    assert plan.data["plan"] == "nf-compute-200"  # 2 vCPU, 4 GB: nothing smaller fits
    assert plan.price_per_hour == pytest.approx(0.067)
    assert "nf-compute-200" in plan.summary and "$0.067/h" in plan.summary
    assert any(n.key == "resources" and "nf-compute-200" in n.detail for n in plan.notes)


@pytest.mark.parametrize("cpu, memory_gb", [(1, 4), (0.5, 1), (3, 1), (8, 30), (1.5, 2)])
def test_chosen_plan_is_never_smaller_than_asked(fake, cpu, memory_gb):
    provider = provider_for(fake)

    async def both():
        plan = await provider.plan(config(cpu=cpu, memory_gb=memory_gb))
        plans, _ = await provider.catalogue()
        return plan, {p["id"]: p for p in plans}

    plan, by_id = run(closing(provider, both()))
    chosen = by_id[plan.data["plan"]]
    cheaper_fits = [p for p in by_id.values() if p["id"].startswith("nf-compute-")
                    and p["cpuResource"] >= cpu and p["ramResource"] >= memory_gb * 1024
                    and p["amountPerHour"] < chosen["amountPerHour"]]
    assert chosen["cpuResource"] >= cpu and chosen["ramResource"] >= memory_gb * 1024
    assert cheaper_fits == []


def test_an_explicit_plan_smaller_than_the_resources_is_refused(fake):
    provider = provider_for(fake)

    with pytest.raises(ConfigError, match="smaller than the resources"):
        run(closing(provider, provider.plan(
            config(cpu=4, memory_gb=8, compute_plan="nf-compute-50"))))


def test_gpu_plan_price_adds_the_per_gpu_price(fake):
    provider = provider_for(fake)

    plan = run(closing(provider, provider.plan(config(gpu={"type": "H100", "count": 2}))))

    assert plan.gpu == "h100-80" and plan.gpu_count == 2
    assert plan.data["plan"] == "nf-gpu-h100-80-2g"
    assert plan.price_per_hour == pytest.approx(0.54 + 2 * 2.74)


def test_gpu_in_a_region_without_it_fails_before_any_create(fake):
    provider = provider_for(fake)
    cfg = config(gpu={"type": "h200-141", "count": 8}, region="europe-west")

    with pytest.raises(ConfigError) as caught:
        run(closing(provider, provider.create(cfg, handle())))

    assert "europe-west" in str(caught.value)
    for region in ("us-central", "europe-west-netherlands", "us-east1", "us-west"):
        assert region in caught.value.hint
    assert fake.count(method="POST") == 0 and fake.count(method="PATCH") == 0


def test_gpu_count_outside_the_options_is_refused(fake):
    provider = provider_for(fake)

    with pytest.raises(ConfigError, match="must be one of \\[8\\]"):
        run(closing(provider, provider.plan(config(gpu={"type": "B200", "count": 1},
                                                   region="us-east1"))))


def test_gpu_environment_lifecycle_through_the_sdk():
    clock = Clock()
    with FakeNorthflank(pending_seconds=5, progress_seconds=30, clock=clock) as fake:
        provider = provider_for(fake)
        cfg = config(gpu={"type": "NVIDIA H100", "count": 1})

        async def lifecycle():
            seen = []
            made = await provider.create(cfg, handle())
            for step in (0, 10, 40):
                clock.now += step
                seen.append((await provider.get(made)).state)
            await provider.stop(made)
            seen.append((await provider.get(made)).state)
            await provider.start(made)
            seen.append((await provider.get(made)).state)
            clock.now += 40
            running = await provider.get(made)
            await provider.destroy(made)
            seen.append((await provider.get(made)).state)
            return made, seen, running

        made, seen, running = run(closing(provider, lifecycle()))

    assert made.resource_id == "research/ml-training"
    assert seen == [State.PROVISIONING, State.STARTING, State.RUNNING, State.STOPPED,
                    State.PROVISIONING, State.GONE]
    assert running.price_per_hour == pytest.approx(0.27 + 2.74)
    assert running.endpoint.extra["proxy"][-6:] == [
        "service", "--projectId", "research", "--serviceId", "ml-training",
        "--proxyOnly"]
    assert fake.identities == {} and fake.services == {}


def test_create_sends_gpu_plan_gpu_configuration_ssh_and_marker(fake):
    provider = provider_for(fake)

    run(closing(provider, provider.create(
        config(gpu={"type": "l4", "count": 1}, env={"HF_HOME": "/workspace/hf"}),
        handle(marker="m0042"))))

    body = next(r.body for r in fake.requests if r.op == "create_service")
    assert body["billing"] == {"deploymentPlan": "nf-gpu-l4-24-1g"}
    assert body["deployment"]["gpu"] == {"enabled": True, "configuration": {
        "gpuType": "l4-24", "gpuCount": 1, "timesliced": False}}
    assert body["deployment"]["ssh"] == {"enabled": True}
    assert body["deployment"]["docker"]["customCommand"] == "sleep infinity"
    assert body["tags"] == ["sindri", "sindri-m-m0042"]
    assert body["runtimeEnvironment"]["HF_HOME"] == "/workspace/hf"
    identity = fake.identities["sindri-research-ml-training"]
    assert identity["sshPublicKeys"] == [{"key": KEY}]
    assert identity["restrictions"]["tags"]["items"] == ["sindri-m-m0042"]


def test_web_app_example_plans_and_deploys_with_autoscaling(fake):
    provider = provider_for(fake)

    async def deploy():
        plan = await provider.plan(web_app())
        made = await provider.create(web_app(), handle("web-app", key=None))
        return plan, await provider.get(made)

    plan, seen = run(closing(provider, deploy()))

    body = next(r.body for r in fake.requests if r.op == "create_service")
    assert plan.data["plan"] == "nf-compute-50" and plan.price_per_hour == 0.017
    assert body["autoscaling"]["horizontal"] == {
        "enabled": True, "minReplicas": 1, "maxReplicas": 3,
        "cpu": {"enabled": True, "thresholdPercentage": 70}}
    assert body["ports"] == [{"name": "p8080", "internalPort": 8080,
                              "protocol": "HTTP", "public": True}]
    assert "docker" not in body["deployment"]  # the image's own command serves
    assert seen.state is State.RUNNING
    assert fake.projects["my-project"]["region"] == "us-central"


def test_names_are_normalised_before_sending(fake):
    provider = provider_for(fake)
    cfg = config("ML_Training.v2", project_name="Research Lab 2026")

    plan = run(closing(provider, provider.plan(cfg)))

    assert plan.data["service_id"] == "ml-training-v2"
    assert plan.data["project_id"] == "research-lab-2026"
    assert {n.key for n in plan.notes if n.treatment == "mapped"} >= {
        "service_name", "project_name"}


@pytest.mark.parametrize("raw, max_len", [("9-lives", 54), ("x", 54), ("a" * 80, 54),
                                          ("--dash--", 39), ("é_ü", 39)])
def test_normalised_names_match_the_grammar(raw, max_len):
    fixed = names.normalise(raw, max_len)

    assert names.is_valid(fixed, max_len) and names.derive_id(fixed) == fixed


def test_two_names_deriving_the_same_id_give_a_clear_error(fake):
    provider = provider_for(fake)

    async def two():
        await provider.create(config("ml.training"), handle("ml.training", "m1"))
        await provider.create(config("ml-training"), handle("ml-training", "m2"))

    with pytest.raises(ProviderAPIError) as caught:
        run(closing(provider, two()))

    assert caught.value.status == 409
    assert "'ml-training'" in str(caught.value) and "ml.training" in str(caught.value)
    assert "service_name" in caught.value.hint
    assert fake.count("create_service") == 1


def test_lost_create_answer_is_found_by_marker_and_not_repeated(fake):
    provider = provider_for(fake)
    fake.inject("create_service", drop=True, after=True)

    async def lost_then_found():
        with pytest.raises(OutcomeUnknownError):
            await provider.create(config(), handle(marker="m77"))
        found = await provider.find(handle(marker="m77", key=None))
        again = await provider.create(config(), handle(marker="m77"))
        return found, again

    found, again = run(closing(provider, lost_then_found()))

    assert found.resource_id == again.resource_id == "research/ml-training"
    assert fake.count("create_service") == 1  # the SDK's blind retry is disarmed


def test_existing_project_in_another_region_is_a_config_error(fake):
    provider = provider_for(fake)
    run(closing(provider, provider.create(config(region="europe-west"), handle("a", "m1"))))
    provider = provider_for(fake)

    with pytest.raises(ConfigError, match="exists in region 'europe-west'") as caught:
        run(closing(provider, provider.create(config("other", region="us-central"),
                                              handle("other", "m2"))))

    assert "region: europe-west" in caught.value.hint


def test_ssh_identity_is_updated_when_it_exists(fake):
    provider = provider_for(fake)
    fake.identities["sindri-research-ml-training"] = {
        "id": "sindri-research-ml-training", "name": "sindri-research-ml-training",
        "sshPublicKeys": [{"key": "ssh-ed25519 AAAAold"}]}

    made = run(closing(provider, provider.create(config(), handle())))

    assert fake.count("update_ssh_identity") == 1 and fake.count("add_ssh_identity") == 0
    assert fake.identities[made.data["identity_id"]]["sshPublicKeys"] == [{"key": KEY}]


def test_failed_rollout_shows_reason_and_last_log_lines(fake):
    provider = provider_for(fake)

    async def failing():
        made = await provider.create(config(), handle())
        fake.fail_rollout("research", "ml-training", "Back-off pulling image",
                          logs=["stderr F pull access denied for pytorch/pytorch"])
        return await provider.get(made)

    seen = run(closing(provider, failing()))

    assert seen.state is State.FAILED
    assert "Back-off pulling image" in seen.message
    assert "pull access denied" in seen.message and "TASK_FAILED" in seen.message


def test_stuck_rollout_is_explained_once_per_refresh():
    clock = Clock()
    with FakeNorthflank(clock=clock) as fake:
        provider = provider_for(fake, stuck_after=60)

        async def stuck():
            made = await provider.create(config(), handle())
            fake.stick_rollout("research", "ml-training", logs=["stdout F waiting for GPU"])
            first = await provider.get(made)
            clock.now += 90
            second = await provider.get(made)
            clock.now += 30
            third = await provider.get(made)
            return first, second, third

        first, second, third = run(closing(provider, stuck()))

    assert first.state is State.STARTING and "stuck" not in first.message
    assert "stuck in IN_PROGRESS" in second.message and "waiting for GPU" in second.message
    assert third.message == second.message
    assert fake.count("get_logs") == 1


def test_unknown_status_maps_to_unknown(fake):
    provider = provider_for(fake)
    data = {"status": {"deployment": {"status": "ROLLING_BACK"}}, "servicePaused": False}

    seen = run(closing(provider, provider.observe(
        Handle("northflank", "x", "m", "research/x"), data)))

    assert seen.state is State.UNKNOWN and "does not know" in seen.message


def test_start_of_a_running_service_is_a_no_op(fake):
    provider = provider_for(fake)

    async def twice():
        made = await provider.create(config(), handle())
        await provider.start(made)
        return await provider.get(made)

    seen = run(closing(provider, twice()))

    assert seen.state is State.RUNNING and fake.count("resume_service") == 1


def test_list_owned_returns_only_sindri_services(fake):
    provider = provider_for(fake)

    async def two():
        await provider.create(config(), handle(marker="m9"))
        api = provider.api()
        await api.sdk.create.service.deployment(project_id="research", data={
            "name": "foreign", "billing": {"deploymentPlan": "nf-compute-50"},
            "deployment": {"instances": 1, "external": {"imagePath": "nginx:1.27"}}})
        return await provider.list_owned()

    owned = run(closing(provider, two()))

    assert [(h.name, h.marker, h.resource_id) for h in owned] == [
        ("ml-training", "m9", "research/ml-training")]


@pytest.mark.parametrize("status, kind, hint_word", [
    (401, AuthError, "NORTHFLANK_API_TOKEN"), (403, AuthError, "permission"),
    (500, ProviderAPIError, "server error")])
def test_api_errors_become_typed_errors(fake, status, kind, hint_word):
    provider = provider_for(fake)
    fake.inject("create_project", status=status)

    with pytest.raises(kind) as caught:
        run(closing(provider, provider.create(config(), handle())))

    assert caught.value.status == status and caught.value.provider == "northflank"
    assert hint_word in caught.value.hint and caught.value.request_id
    assert fake.count("create_project") == 1  # a POST is never repeated


def test_missing_token_is_an_auth_error_naming_the_variable():
    provider = NorthflankProvider(environ={})

    with pytest.raises(AuthError, match="NORTHFLANK_API_TOKEN"):
        run(provider.plan(config()))


def test_provider_reads_token_and_url_from_the_environment(fake):
    provider = NorthflankProvider(environ={"NORTHFLANK_API_TOKEN": TOKEN,
                                           "SINDRI_NORTHFLANK_API_URL": fake.url})

    plan = run(closing(provider, provider.plan(config())))

    assert provider.base_url == fake.url and plan.data["plan"] == "nf-compute-100-2"
    assert TOKEN not in repr(provider.api())


def test_check_reports_token_cli_version_and_login(fake, monkeypatch):
    monkeypatch.setenv("PATH", f"{STANDIN}{os.pathsep}{os.environ['PATH']}")
    provider = provider_for(fake, executable="northflank")

    lines = run(closing(provider, provider.check()))

    assert [(c.name, c.ok) for c in lines] == [
        ("northflank API token", True), ("northflank CLI", True),
        ("northflank CLI login", True)]
    assert "team sindri-team" in lines[0].detail and "0.10.12" in lines[1].detail


def test_check_gives_install_and_login_commands(fake, monkeypatch, tmp_path):
    monkeypatch.setenv("NF_STANDIN_LOGGED_IN", "0")
    monkeypatch.setenv("PATH", f"{STANDIN}{os.pathsep}{os.environ['PATH']}")
    provider = provider_for(fake, executable="northflank")
    logged_out = run(closing(provider, provider.check()))
    monkeypatch.setenv("PATH", str(tmp_path))
    provider = provider_for(fake, executable="northflank")
    missing = run(closing(provider, provider.check()))

    assert logged_out[2].ok is False and "northflank login" in logged_out[2].fix
    assert missing[1].ok is False and missing[1].fix == "npm install -g @northflank/cli"


class _Shell(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True


def test_kernel_host_is_reached_through_the_cli_proxy(fake, monkeypatch, tmp_path):
    """An SSH server stands in for the service's sshd; the stand-in CLI proxies to it."""
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    (tmp_path / "authorized_keys").write_text(client_key.export_public_key().decode())

    async def scenario():
        server = await asyncssh.create_server(
            _Shell, "127.0.0.1", 0, server_host_keys=[host_key],
            authorized_client_keys=str(tmp_path / "authorized_keys"),
            process_factory=lambda p: (p.stdout.write("hello from the service\n"),
                                       p.exit(0)))
        port = server.sockets[0].getsockname()[1]
        monkeypatch.setenv("NF_STANDIN_SSH_PORT", str(port))
        provider = provider_for(fake)
        made = await provider.create(config(), handle(
            key=client_key.export_public_key().decode()))
        seen = await provider.get(made)
        proxy = await SSHProxy.open(seen.endpoint.extra["proxy"], timeout=20)
        try:
            async with asyncssh.connect(proxy.host, proxy.port, username="root",
                                        client_keys=[client_key],
                                        known_hosts=None) as conn:
                result = await conn.run("python -c 'print(1)'")
        finally:
            await proxy.close()
            await provider._api.aclose()
            server.close()
        return seen, result

    seen, result = run(scenario())

    assert seen.endpoint.kind == "ssh" and seen.endpoint.extra["proxy_mode"] == "listen"
    assert result.stdout == "hello from the service\n" and result.exit_status == 0


WEB_APP_YAML = """
name: web-app
version: 3.1.0
deployment: {provider: northflank, image: "nginx:1.27"}
providers:
  northflank: {project_name: my-project, service_name: web-app, region: us-central,
               compute_plan: nf-compute-50, instances: 1, ports: [8080],
               auto_scaling: {enabled: true, min_instances: 1, max_instances: 3,
                              target_cpu_percent: 70}}
"""


def test_web_app_yaml_through_the_real_config_models(fake):
    from sindri_jupyter.config.loader import loads

    provider = provider_for(fake)
    cfg = loads(WEB_APP_YAML)

    async def deploy():
        plan = await provider.plan(cfg)
        made = await provider.create(cfg, handle("web-app", key=None))
        return plan, await provider.get(made)

    plan, seen = run(closing(provider, deploy()))

    assert plan.data["plan"] == "nf-compute-50" and seen.state is State.RUNNING
    assert {n.key for n in plan.notes} >= {"auto_scaling", "ports", "instances"}


def test_engine_hooks_ask_for_the_key_and_read_the_pace(fake):
    provider = provider_for(fake)

    first, ceiling = provider.first_poll, provider.max_poll
    run(provider._api.aclose())

    assert NorthflankProvider.needs_ssh_key is True
    assert first == ceiling == provider.poll_interval() >= 12
