"""Request bodies the provider sends, checked against the SDK's typed shapes.

The SDK's ``northflank._types`` holds the TypedDicts generated from Northflank's
OpenAPI spec. ``conforms`` walks a JSON value against one of them: required
keys present, no unknown keys, literals and unions respected. The bodies are
taken from the fake's request log, i.e. exactly what went over the wire.
"""

from __future__ import annotations

import typing
from types import SimpleNamespace as NS

import pytest
from northflank import _types as shapes
from typing_extensions import NotRequired, Required, is_typeddict

from sindri_jupyter.testing.fake_northflank import FakeNorthflank
from tests.test_northflank_provider import (
    closing,
    config,
    handle,
    provider_for,
    run,
    web_app,
)


def _hints(cls: type) -> dict[str, typing.Any]:
    return typing.get_type_hints(cls, vars(shapes), include_extras=True)


def conforms(value: typing.Any, tp: typing.Any, path: str = "body") -> list[str]:
    """Problems of ``value`` against the type ``tp``; empty when it conforms."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is typing.Any:
        return []
    if origin in (NotRequired, Required):
        return conforms(value, args[0], path)
    if origin is typing.Union:
        tries = [conforms(value, arm, path) for arm in args]
        return [] if any(not t for t in tries) else min(tries, key=len)
    if origin is typing.Literal:
        return [] if value in args else [f"{path}: {value!r} not in {args}"]
    if is_typeddict(tp):
        return _typeddict(value, tp, path)
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [p for i, v in enumerate(value) for p in conforms(v, args[0], f"{path}[{i}]")]
    if origin is dict:
        return [] if isinstance(value, dict) else [f"{path}: expected an object"]
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected a number"]
    if tp in (int, str, bool):
        ok = isinstance(value, tp) and (tp is bool or not isinstance(value, bool))
        return [] if ok else [f"{path}: expected {tp.__name__}, got {value!r}"]
    if tp is type(None):
        return [] if value is None else [f"{path}: expected null"]
    raise TypeError(f"conforms() cannot check {tp!r} at {path}")


def _typeddict(value: typing.Any, tp: type, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: expected an object for {tp.__name__}"]
    hints = _hints(tp)
    problems = [f"{path}.{k}: unknown to {tp.__name__}" for k in value if k not in hints]
    for key, hint in hints.items():
        optional = typing.get_origin(hint) is NotRequired
        if key not in value:
            if not optional:
                problems.append(f"{path}.{key}: required by {tp.__name__}")
            continue
        problems += conforms(value[key], hint, f"{path}.{key}")
    return problems


def sent(fake: FakeNorthflank, op: str) -> list[dict]:
    return [r.body for r in fake.requests if r.op == op]


@pytest.fixture
def fake():
    with FakeNorthflank() as server:
        yield server


def test_the_checker_catches_wrong_bodies():
    flat_gpu = {"name": "x", "billing": {"deploymentPlan": "nf-gpu-h100-80-1g"},
                "deployment": {"instances": 1, "external": {"imagePath": "a:b"}},
                "gpu": {"enabled": True, "gpuType": "h100-80"}}
    no_instances = {"name": "x", "billing": {"deploymentPlan": "p"},
                    "deployment": {"external": {"imagePath": "a:b"}}}
    bad_protocol = {"name": "x", "billing": {"deploymentPlan": "p"},
                    "deployment": {"instances": 1, "external": {"imagePath": "a:b"}},
                    "ports": [{"name": "p", "internalPort": 1, "protocol": "HTTPS"}]}

    assert "body.gpu: unknown to CreateServiceDeploymentRequest" in conforms(
        flat_gpu, shapes.CreateServiceDeploymentRequest)
    assert conforms(no_instances, shapes.CreateServiceDeploymentRequest)
    assert conforms(bad_protocol, shapes.CreateServiceDeploymentRequest)


def test_gpu_service_body_matches_create_service_deployment_request(fake):
    provider = provider_for(fake)
    cfg = config(gpu={"type": "A100 80GB", "count": 2}, env={"A": "1"})

    run(closing(provider, provider.create(cfg, handle())))

    [body] = sent(fake, "create_service")
    assert conforms(body, shapes.CreateServiceDeploymentRequest) == []
    assert conforms(body["deployment"],
                    shapes.CreateServiceDeploymentRequestExternalDeployment) == []


def test_web_app_body_with_ports_health_checks_and_autoscaling(fake):
    cfg = web_app()
    cfg.providers.northflank.health_checks = [NS(
        protocol="HTTP", type="readinessProbe", path="/health", port=8080,
        initial_delay_seconds=5, period_seconds=15, timeout_seconds=2,
        failure_threshold=3)]
    provider = provider_for(fake)

    run(closing(provider, provider.create(cfg, handle("web-app"))))

    [body] = sent(fake, "create_service")
    assert conforms(body, shapes.CreateServiceDeploymentRequest) == []
    assert body["healthChecks"][0]["path"] == "/health"


def test_project_identity_and_resume_bodies(fake):
    provider = provider_for(fake)

    async def everything():
        made = await provider.create(config(), handle())
        await provider.stop(made)
        await provider.start(made)

    run(closing(provider, everything()))

    [project] = sent(fake, "create_project")
    [identity] = sent(fake, "add_ssh_identity")
    [resume] = sent(fake, "resume_service")
    assert conforms(project, shapes.CreateProjectRequestRegion) == []
    assert conforms(identity, shapes.AddSshIdentitiesRequest) == []
    assert conforms(resume, shapes.ResumeServiceRequest) == []


def test_identity_update_body_matches_update_request(fake):
    fake.identities["sindri-research-ml-training"] = {
        "id": "sindri-research-ml-training", "name": "sindri-research-ml-training"}
    provider = provider_for(fake)

    run(closing(provider, provider.create(config(), handle())))

    [update] = sent(fake, "update_ssh_identity")
    assert conforms(update, shapes.UpdateSshIdentitiesRequest) == []
