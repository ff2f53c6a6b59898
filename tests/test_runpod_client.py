"""The RunPod v2 client, GPU choice and provider against the fake RunPod on loopback.

The helpers at the top (``fake``, ``client_for``, ``provider_for``, ``config``)
are shared with the other RunPod test files.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from sindri_jupyter.core.http import HttpTimeouts, RetryPolicy
from sindri_jupyter.core.types import Handle, State
from sindri_jupyter.errors import (
    AuthError,
    CapacityError,
    ConfigError,
    ProviderAPIError,
    RateLimitError,
    UsageError,
)
from sindri_jupyter.providers.runpod import gpus
from sindri_jupyter.providers.runpod.client import RunPodClient
from sindri_jupyter.providers.runpod.models import GpuType, Pod
from sindri_jupyter.providers.runpod.provider import RunPodProvider
from sindri_jupyter.testing.fake_runpod import FakeRunPod

A6000 = "NVIDIA RTX A6000"


def run(coro):
    return asyncio.run(coro)


async def no_sleep(seconds: float) -> None:
    """Backoff is observed through the fake's request log, never waited for."""


def client_for(fake, *, key=None, read=5.0, attempts=4) -> RunPodClient:
    return RunPodClient(
        key or fake.api_key, fake.url,
        timeouts=HttpTimeouts(connect=2.0, read=read, deadline=30.0),
        policy=RetryPolicy(max_attempts=attempts, base_delay=0.01, max_delay=0.05),
        sleep=no_sleep,
    )


def provider_for(fake, **kw) -> RunPodProvider:
    return RunPodProvider(client=client_for(fake, **kw))


def config(**runpod) -> SimpleNamespace:
    """A config shaped like SindriConfig: name, deployment, providers.runpod."""
    section = {"gpu_type_id": "NVIDIA_RTX_A6000", "gpu_count": 2,
               "cloud_type": "SECURE", "volume_in_gb": None,
               "container_disk_in_gb": None, "network_volume_id": None,
               "data_center_ids": [], "gpu_fallbacks": [], "ports": [], "name": None}
    section.update(runpod)
    return SimpleNamespace(
        name="ml-training",
        deployment=SimpleNamespace(image="pytorch/pytorch:2.0.1-cuda11.8-cudnn8-runtime",
                                   env={"HF_HOME": "/workspace/hf"}, resources=None),
        providers=SimpleNamespace(runpod=SimpleNamespace(**section)),
    )


def handle(marker="m-0001", **data) -> Handle:
    return Handle(provider="runpod", name="ml-training", marker=marker, data=data)


def body(name="pod", gpu=A6000, **extra):
    return {"name": name, "image": "img:1", "gpu": {"id": gpu, "count": 1},
            "ports": ["22/tcp"], **extra}


@pytest.fixture
def fake():
    with FakeRunPod(ssh_port=2222) as server:
        yield server


# -- client -----------------------------------------------------------------------


def test_pod_crud_and_actions_round_trip(fake):
    async def go():
        async with client_for(fake) as rp:
            pod = await rp.create_pod(body())
            patched = await rp.update_pod(pod.id, {"name": "renamed"})
            stopped = await rp.pod_action(pod.id, "stop")
            started = await rp.pod_action(pod.id, "start")
            gone = await rp.pod_action(pod.id, "terminate")
            return pod, patched, stopped, started, gone, await rp.list_pods()

    pod, patched, stopped, started, gone, left = run(go())

    assert pod.status == "RUNNING" and pod.gpu_id == A6000
    assert patched.name == "renamed"
    assert stopped.status == "EXITED" and "start" in stopped.actions
    assert started.status == "RUNNING"
    assert gone is None and left == []


@pytest.mark.parametrize("page_size", [None, 2])
def test_list_pods_reads_plain_and_paginated_shapes(fake, page_size):
    fake.page_size = page_size

    async def go():
        async with client_for(fake) as rp:
            for i in range(5):
                await rp.create_pod(body(name=f"p{i}"))
            return await rp.list_pods()

    pods = run(go())

    assert sorted(p.name for p in pods) == [f"p{i}" for i in range(5)]
    assert fake.count("GET", "/v2/pods") == (1 if page_size is None else 3)


def test_delete_then_get_is_a_404_with_detail_and_request_id(fake):
    async def go():
        async with client_for(fake) as rp:
            pod = await rp.create_pod(body())
            await rp.delete_pod(pod.id)
            await rp.get_pod(pod.id)

    with pytest.raises(ProviderAPIError) as caught:
        run(go())

    assert caught.value.status == 404
    assert caught.value.detail == "pod not found"
    assert caught.value.request_id


def test_an_action_not_in_actions_is_a_409(fake):
    async def go():
        async with client_for(fake) as rp:
            pod = await rp.create_pod(body())
            await rp.pod_action(pod.id, "stop")
            await rp.pod_action(pod.id, "stop")

    with pytest.raises(ProviderAPIError) as caught:
        run(go())

    assert caught.value.status == 409


def test_logs_come_from_the_event_stream_and_honour_tail(fake):
    async def go():
        async with client_for(fake) as rp:
            pod = await rp.create_pod(body())
            return await rp.pod_logs(pod.id), await rp.pod_logs(pod.id, tail=1)

    everything, last = run(go())

    assert [e.line for e in everything][-1] == "sshd listening on 22"
    assert len(last) == 1 and last[0].line == "sshd listening on 22"


def test_catalog_volumes_keys_and_billing(fake):
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL me@example.com"

    async def go():
        async with client_for(fake) as rp:
            gpus_ = await rp.gpu_types(count=2, cloud="COMMUNITY")
            volume = await rp.create_network_volume("data", 20, "US-KS-2")
            listed = await rp.list_network_volumes()
            got = await rp.get_network_volume(volume.id)
            await rp.delete_network_volume(volume.id)
            keys = await rp.set_ssh_keys([key])
            pod = await rp.create_pod(body())
            return (gpus_, volume, listed, got, await rp.list_network_volumes(), keys,
                    await rp.ssh_keys(), await rp.pod_billing(pod_id=pod.id),
                    await rp.cpu_types(), await rp.data_centers(gpu_availability=True))

    gpus_, volume, listed, got, after, keys, read, bills, cpus, dcs = run(go())

    assert any(g.id == A6000 and g.availability == "HIGH" for g in gpus_)
    assert [v.id for v in listed] == [volume.id] and got.data_center == "US-KS-2"
    assert after == []
    assert keys == read == [key]
    assert len(bills) == 1 and bills[0].total >= 0
    assert cpus and dcs and dcs[0].raw.get("gpuAvailability")


def test_v1_and_unknown_fields_are_refused_before_sending(fake):
    async def go(extra):
        async with client_for(fake) as rp:
            await rp.create_pod(body(**extra))

    with pytest.raises(UsageError) as v1:
        run(go({"containerDiskInGb": 20}))
    with pytest.raises(UsageError) as spot:
        run(go({"interruptible": True}))

    assert "disk" in v1.value.hint
    assert "spot" in spot.value.hint
    assert fake.count("POST", "/v2/pods") == 0


def test_wrong_key_is_an_auth_error_that_names_the_variable(fake):
    async def go():
        async with client_for(fake, key="wrong") as rp:
            await rp.list_pods()

    with pytest.raises(AuthError) as caught:
        run(go())

    assert caught.value.status == 401
    assert "RUNPOD_API_KEY" in caught.value.hint
    assert "wrong" not in str(caught.value)


def test_forbidden_key_explains_the_missing_scope(fake):
    fake.inject("list_pods", status=403)

    async def go():
        async with client_for(fake) as rp:
            await rp.list_pods()

    with pytest.raises(AuthError) as caught:
        run(go())

    assert caught.value.status == 403 and "scope" in caught.value.hint


def test_capacity_400_becomes_capacity_error(fake):
    fake.inject("create", status=400)

    async def go():
        async with client_for(fake) as rp:
            await rp.create_pod(body())

    with pytest.raises(CapacityError) as caught:
        run(go())

    assert "no longer any instances" in caught.value.detail


def test_429_past_the_retries_is_a_rate_limit_error(fake):
    fake.inject("get_pod", status=429, retry_after=0, times=10)

    async def go():
        async with client_for(fake, attempts=3) as rp:
            await rp.get_pod("abc")

    with pytest.raises(RateLimitError):
        run(go())

    assert fake.count("GET", "/v2/pods/abc") == 3


def test_from_env_reads_key_and_url_and_never_shows_the_key(fake):
    client = RunPodClient.from_env({"RUNPOD_API_KEY": fake.api_key,
                                    "SINDRI_RUNPOD_API_URL": fake.url})

    pods = run(_list_and_close(client))

    assert pods == [] and client.base_url == fake.url
    assert fake.api_key not in repr(client)
    with pytest.raises(AuthError):
        RunPodClient.from_env({})


async def _list_and_close(client):
    async with client:
        return await client.list_pods()


@pytest.mark.parametrize("runtime", [None, {}, {"ports": [{"private": 22}]},
                                     {"uptime": 5}])
def test_runtime_null_empty_or_partial_is_tolerated(runtime):
    pod = Pod.from_json({"id": "p", "name": "n", "status": "RUNNING",
                         "runtime": runtime, "ssh": None})

    assert pod.status == "RUNNING"
    assert all(p.public is None for p in pod.runtime_ports)


# -- GPU choice -----------------------------------------------------------------------


def _catalog(fake) -> list[GpuType]:
    async def go():
        async with client_for(fake) as rp:
            return await rp.gpu_types()

    return run(go())


@pytest.mark.parametrize("typed,expected", [
    ("NVIDIA_RTX_A6000", A6000), ("rtx a6000", A6000), ("RTX 4090",
                                                        "NVIDIA GeForce RTX 4090"),
    ("nvidia-geforce-rtx-3090", "NVIDIA GeForce RTX 3090"), (A6000, A6000),
    ("rtx a4500", "NVIDIA  RTX A4500"),
])
def test_gpu_names_resolve_in_any_spelling(fake, typed, expected):
    assert gpus.resolve(typed, _catalog(fake)).id == expected


def test_unknown_gpu_lists_the_nearest_catalog_names(fake):
    with pytest.raises(ConfigError) as caught:
        gpus.resolve("RTX A6001", _catalog(fake))

    assert A6000 in caught.value.hint


def test_similar_gpus_have_at_least_the_vram_and_are_near_in_price(fake):
    catalog = _catalog(fake)
    wanted = gpus.resolve("rtx a6000", catalog)

    found = gpus.similar(wanted, catalog, cloud="SECURE")

    assert found and all(g.memory >= 48 for g in found)
    assert found[0].id == "NVIDIA A40"  # 48 GB at the closest price


# -- provider --------------------------------------------------------------------------


def with_provider(fake, work, **kw):
    async def go():
        provider = provider_for(fake, **kw)
        try:
            return await work(provider)
        finally:
            await provider.aclose()

    return run(go())


def test_plan_shows_catalog_price_times_count_and_availability(fake):
    cfg = config(compute_plan="48-vcpu-90gb", docker_args="--shm-size=8g")

    plan = with_provider(fake, lambda p: p.plan(cfg))

    assert plan.gpu == A6000 and plan.gpu_count == 2
    assert plan.price_per_hour == pytest.approx(0.49 * 2)
    assert plan.availability == "HIGH"
    treatments = {n.key: n.treatment for n in plan.notes}
    assert treatments["compute_plan"] == treatments["docker_args"] == "not applicable"
    assert "$0.98/h" in plan.summary
    assert fake.count("POST", "/v2/pods") == 0


def test_create_exposes_ssh_delivers_the_key_and_carries_the_marker(fake):
    async def work(p):
        made = await p.create(config(), handle(public_key="ssh-ed25519 AAAA me"))
        return made, await p.client().get_pod(made.resource_id)

    made, pod = with_provider(fake, work)

    assert made.resource_id == pod.id
    assert RunPodProvider.needs_ssh_key  # asks the engine for the public key
    assert "22/tcp" in pod.ports
    assert pod.env["PUBLIC_KEY"] == "ssh-ed25519 AAAA me"
    assert pod.env["SINDRI_MARKER"] == "m-0001" and pod.name.endswith("-m-0001")
    assert pod.env["HF_HOME"] == "/workspace/hf"


def test_get_reports_running_with_the_direct_ssh_endpoint(fake):
    async def work(p):
        return await p.get(await p.create(config(), handle()))

    seen = with_provider(fake, work)

    assert seen.state is State.RUNNING
    assert (seen.endpoint.host, seen.endpoint.port) == ("127.0.0.1", 2222)
    assert seen.price_per_hour == pytest.approx(0.98)


def test_get_follows_the_timeline_before_running(fake):
    fake.provision_seconds = 60

    async def work(p):
        return await p.get(await p.create(config(), handle()))

    seen = with_provider(fake, work)

    assert seen.state is State.PROVISIONING and seen.endpoint is None


@pytest.mark.parametrize("raw,state", [("ERROR", State.FAILED),
                                       ("MIGRATING", State.UNKNOWN)])
def test_pod_status_maps_to_state_and_unknown_stays_unknown(fake, raw, state):
    async def work(p):
        made = await p.create(config(), handle())
        fake.pods[made.resource_id].status_override = raw
        return await p.get(made)

    seen = with_provider(fake, work)

    assert seen.state is state and seen.raw_state == raw


def test_a_pod_deleted_in_the_console_is_gone(fake):
    async def work(p):
        made = await p.create(config(), handle())
        fake.delete_out_of_band(made.resource_id)
        return await p.get(made)

    assert with_provider(fake, work).state is State.GONE


@pytest.mark.parametrize("host,kind", [("10.1.2.3", "tcp"), ("192.168.0.9", "tcp"),
                                       ("127.0.0.1", "http")])
def test_no_endpoint_from_a_private_address_or_the_http_proxy(fake, host, kind):
    fake.ssh_host, fake.ssh_type = host, kind

    async def work(p):
        return await p.get(await p.create(config(), handle()))

    seen = with_provider(fake, work)

    assert seen.state is State.RUNNING and seen.endpoint is None
    assert "port 22" in seen.message


def test_loopback_endpoint_only_when_the_api_is_on_loopback():
    from sindri_jupyter.providers.runpod.provider import ssh_endpoint

    pod = Pod.from_json({"id": "p", "status": "RUNNING", "runtime": {"ports": [
        {"private": 22, "public": 4000, "type": "tcp", "ip": "127.0.0.1"}]}})
    public = Pod.from_json({"id": "p", "status": "RUNNING", "runtime": {"ports": [
        {"private": 22, "public": 34446, "type": "tcp", "ip": "195.26.233.3"}]}})

    assert ssh_endpoint(pod, allow_loopback=False) is None
    assert ssh_endpoint(pod, allow_loopback=True).port == 4000
    assert ssh_endpoint(public).host == "195.26.233.3"


def test_stop_start_destroy(fake):
    async def work(p):
        made = await p.create(config(), handle())
        await p.stop(made)
        stopped = await p.get(made)
        await p.stop(made)  # already stopped: not an error
        await p.start(made)
        started = await p.get(made)
        await p.destroy(made)
        await p.destroy(made)  # already gone: not an error
        return stopped, started, await p.get(made)

    stopped, started, gone = with_provider(fake, work)

    assert stopped.state is State.STOPPED
    assert started.state is State.RUNNING
    assert gone.state is State.GONE


def test_list_owned_returns_only_pods_with_a_marker(fake):
    async def work(p):
        await p.create(config(), handle("m-a"))
        await p.client().create_pod(body(name="someone-elses"))
        return await p.list_owned()

    owned = with_provider(fake, work)

    assert [(h.marker, h.name) for h in owned] == [("m-a", "ml-training")]


def test_check_accepts_a_good_key_and_explains_refusals(fake):
    good = with_provider(fake, lambda p: p.check())
    bad = with_provider(fake, lambda p: p.check(), key="nope")
    fake.inject("list_pods", status=403)
    scoped = with_provider(fake, lambda p: p.check())
    missing = run(RunPodProvider(environ={}).check())

    assert good[0].ok and fake.url in good[0].detail
    assert not bad[0].ok and "RUNPOD_API_KEY" in bad[0].fix
    assert not scoped[0].ok and "scope" in scoped[0].fix
    assert not missing[0].ok and "RUNPOD_API_KEY" in missing[0].detail


def test_capacity_tries_the_fallbacks_in_order(fake):
    fake.set_stock(A6000, "SECURE", "NONE")
    cfg = config(gpu_fallbacks=["rtx 4090"])

    made = with_provider(fake, lambda p: p.create(cfg, handle()))

    assert made.data["gpu"] == "NVIDIA GeForce RTX 4090"
    assert fake.count("POST", "/v2/pods") == 2 and len(fake.live_pods()) == 1


def test_no_capacity_lists_alternatives_from_live_availability(fake):
    fake.set_stock(A6000, "SECURE", "NONE")

    with pytest.raises(CapacityError) as caught:
        with_provider(fake, lambda p: p.create(config(), handle()))

    options = caught.value.alternatives
    assert any("COMMUNITY" in o and A6000 in o for o in options)
    assert any(o.startswith("NVIDIA A40") for o in options)
    assert fake.live_pods() == []


def test_pinned_data_center_without_stock_suggests_others(fake):
    cfg = config(data_center_ids=["CA-MTL-1"])

    with pytest.raises(CapacityError) as caught:
        with_provider(fake, lambda p: p.create(cfg, handle()))

    assert any("US-KS-2" in o for o in caught.value.alternatives)


@pytest.mark.parametrize("change", [{"cloud_type": "SPOT"}, {"interruptible": True},
                                    {"cloud_type": "ALL"}])
def test_spot_and_v1_only_settings_are_clear_errors(fake, change):
    with pytest.raises(ConfigError) as caught:
        with_provider(fake, lambda p: p.plan(config(**change)))

    assert "SECURE or COMMUNITY" in caught.value.hint


def test_volumes_map_to_mounts(fake):
    async def work(p):
        volume = await p.client().create_network_volume("data", 50, "US-KS-2")
        net = await p.create(config(network_volume_id=volume.id), handle("m-n"))
        disk = await p.create(config(volume_in_gb=100, container_disk_in_gb=40),
                              handle("m-p"))
        return [await p.client().get_pod(h.resource_id) for h in (net, disk)]

    net, disk = with_provider(fake, work)

    assert net.raw["mounts"] == {"network": [{"volumeId": net.raw["mounts"]["network"]
                                              [0]["volumeId"], "path": "/workspace"}]}
    assert net.data_center_id == "US-KS-2"
    assert disk.raw["mounts"] == {"persistent": {"size": 100, "path": "/workspace"}}
    assert disk.raw["disk"] == 40
