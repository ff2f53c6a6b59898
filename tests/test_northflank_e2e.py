"""Northflank end to end: the CLI against the fake Northflank, the stand-in CLI's
SSH proxy on PATH and a real sshd behind it.

The fake hands each SSH identity's public key to ``sshd.authorize`` (what
Northflank's own SSH gateway does with a team identity); the stand-in
``northflank ssh service --proxyOnly`` listens on loopback and forwards to the
sshd. The fake's rollout is instant, so the engine's rate-limit pace (12 s or
more between polls) never has to be waited out here; pacing is tested with
simulated time in test_northflank_ratelimit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sindri_jupyter.core.state import Store
from sindri_jupyter.testing.fake_northflank import FakeNorthflank
from sindri_jupyter.testing.rehearsal import image_key_line
from tests.conftest import sindri
from tests.test_config import NORTHFLANK_EXAMPLE

STANDIN = Path(__file__).parent / "northflank_cli_standin"
TOKEN = "test-token"

GPU_ENV = """\
name: gpu-box
deployment:
  provider: northflank
  image: pytorch/pytorch:2.0.1-cuda11.8-cudnn8-runtime
  resources: {gpu: {type: L4, count: 1}}
providers:
  northflank: {project_name: research, region: us-central}
"""


@pytest.fixture
def fake(sshd):
    server = FakeNorthflank(tokens=(TOKEN,),
                            authorize=lambda key: sshd.authorize(image_key_line(key)))
    with server:
        yield server


@pytest.fixture
def env(fake, sshd, monkeypatch, tmp_path):
    """Token, URL and the stand-in CLI first on PATH, for the CLI subprocesses."""
    log = tmp_path / "standin.jsonl"
    monkeypatch.setenv("NORTHFLANK_API_TOKEN", TOKEN)
    monkeypatch.setenv("SINDRI_NORTHFLANK_API_URL", fake.url)
    monkeypatch.setenv("PATH", f"{STANDIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("NF_STANDIN_SSH_PORT", str(sshd.port))
    monkeypatch.setenv("NF_STANDIN_LOG", str(log))
    return log


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sindri.yaml"
    path.write_text(text)
    return path


def test_gpu_environment_deploy_run_pause_resume_destroy(fake, env, tmp_path):
    cfg = write(tmp_path, GPU_ENV)

    deployed = sindri("deploy", "-f", str(cfg))
    ran = sindri("run", "gpu-box", "--", "x = 20; print(x + 22)")
    record = Store.default().get("gpu-box")
    stopped = sindri("stop", "gpu-box")
    paused = fake.services[("research", "gpu-box")].paused
    started = sindri("start", "gpu-box")
    again = sindri("run", "gpu-box", "--", "print('resumed')")
    status = sindri("status", "gpu-box", "--json")
    destroyed = sindri("destroy", "gpu-box", "--yes")

    assert deployed.returncode == 0, deployed.stderr
    assert deployed.stdout.startswith("plan: gpu-box on northflank: service gpu-box")
    assert "GPU 1x l4-24" in deployed.stdout.splitlines()[1]
    assert ran.stdout == "42\n", ran.stderr
    extra = record.endpoint["extra"]
    assert extra["proxy_mode"] == "listen"
    assert extra["proxy"] == ["northflank", "ssh", "service", "--projectId",
                              "research", "--serviceId", "gpu-box", "--proxyOnly"]
    assert stopped.returncode == 0 and paused is True, stopped.stderr
    assert started.returncode == 0, started.stderr
    assert again.stdout == "resumed\n", again.stderr
    row = json.loads(status.stdout)["environments"][0]
    assert row["state"] == "RUNNING" and row["price_per_hour"] > 0
    assert "confirmed gone" in destroyed.stdout, destroyed.stderr
    assert fake.services == {} and fake.identities == {}
    proxied = [json.loads(line) for line in env.read_text().splitlines()]
    assert any(argv[:2] == ["ssh", "service"] for argv in proxied)


def test_web_app_example_plans_and_deploys_with_autoscaling(fake, env, tmp_path):
    cfg = write(tmp_path, NORTHFLANK_EXAMPLE)

    planned = sindri("deploy", "-f", str(cfg), "--dry-run")
    deployed = sindri("deploy", "-f", str(cfg), "--no-wait")
    status = sindri("status", "web-app", "--json")
    service = fake.services[("my-project", "web-app")].spec
    destroyed = sindri("destroy", "web-app", "--yes")

    assert planned.returncode == 0, planned.stderr
    assert "on nf-compute-50" in planned.stdout and "x2" in planned.stdout
    scaling = "auto_scaling: mapped: autoscaling.horizontal 2-10 at 70% CPU"
    assert scaling in planned.stdout
    assert "nothing was created" in planned.stdout
    assert deployed.returncode == 0, deployed.stderr
    assert service["billing"]["deploymentPlan"] == "nf-compute-50"
    assert service["deployment"]["instances"] == 2
    horizontal = service["autoscaling"]["horizontal"]
    assert (horizontal["minReplicas"], horizontal["maxReplicas"]) == (2, 10)
    assert horizontal["cpu"]["thresholdPercentage"] == 70
    row = json.loads(status.stdout)["environments"][0]
    assert row["state"] == "RUNNING"
    assert row["price_per_hour"] == pytest.approx(2 * 0.017)
    assert destroyed.returncode == 0 and fake.services == {}
