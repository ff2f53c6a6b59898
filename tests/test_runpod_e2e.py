"""RunPod end to end: the CLI and the magics against the fake RunPod and a real sshd.

The fake's pods report the test sshd as their direct SSH mapping and hand each
pod's ``PUBLIC_KEY`` to ``sshd.authorize``, as a RunPod image's start script
puts it in ``authorized_keys``. The key line carries a forced command that puts
this interpreter's folder first on ``PATH``: the "image" then has a ``python3``
with ipykernel, like RunPod's PyTorch images, and the provider's default
``python3`` is what starts the kernel.
"""

from __future__ import annotations

import json

import pytest

from sindri_jupyter.config import loads
from sindri_jupyter.core import sync
from sindri_jupyter.core.engine import Engine
from sindri_jupyter.core.state import Store
from sindri_jupyter.testing.fake_runpod import FakeRunPod
from sindri_jupyter.testing.rehearsal import image_key_line
from tests.conftest import ipython_shell, sindri
from tests.test_config import RUNPOD_EXAMPLE

# The foundation issue's first example, unchanged.
EXAMPLE = RUNPOD_EXAMPLE


@pytest.fixture
def fake(sshd):
    server = FakeRunPod(ssh_port=sshd.port, ssh_user=sshd.user,
                        provision_seconds=0.3, start_seconds=0.3,
                        authorize=lambda key: sshd.authorize(image_key_line(key)))
    with server:
        yield server


@pytest.fixture
def env(fake, monkeypatch):
    """The credential and URL, in this process (magics) and the CLI's."""
    values = {"RUNPOD_API_KEY": fake.api_key, "SINDRI_RUNPOD_API_URL": fake.url}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def cfg(tmp_path):
    """The example, with the volume mounted in a test folder instead of /workspace."""
    workspace = tmp_path / "workspace"
    path = tmp_path / "sindri.yaml"
    path.write_text(EXAMPLE + f"    volume_mount_path: {workspace}\n")
    return path


def test_example_plans_with_workspace_cwd_and_inapplicable_keys(fake, env):
    config = loads(EXAMPLE, "sindri.yaml", {})
    engine = Engine()

    plan = sync.run(engine.plan(config))
    sync.run(engine.aclose())

    notes = {n.key: n.treatment for n in plan.notes}
    assert (plan.gpu, plan.gpu_count) == ("NVIDIA RTX A6000", 2)
    assert plan.price_per_hour == pytest.approx(2 * a6000_price(fake))
    assert notes["compute_plan"] == notes["docker_args"] == "not applicable"
    assert plan.data["cwd"] == "/workspace" and plan.data["python"] == "python3"
    assert plan.data["host_workdir"] == "~/.sindri/envs/ml-training"


def a6000_price(fake) -> float:
    return fake.gpus["NVIDIA RTX A6000"]["price"]["secure"]


def test_cli_deploy_run_status_stop_start_destroy(fake, env, cfg, sshd):
    deployed = sindri("deploy", "-f", str(cfg))
    ran = sindri("run", "ml-training", "--",
                 "import os; print(1+1); print(os.getcwd())")
    status = sindri("status", "--json")
    workdir = sshd.home / ".sindri" / "envs" / "ml-training"  # ~ on the "pod"
    workdir_mode = workdir.stat().st_mode & 0o777
    connection_file_there = (workdir / "kernel.json").exists()
    stopped = sindri("stop", "ml-training")
    state_after_stop = fake.pods[fake.live_pods()[0]].desired
    started = sindri("start", "ml-training")
    again = sindri("run", "ml-training", "--", "print(2 + 2)")
    destroyed = sindri("destroy", "ml-training", "--yes")

    assert deployed.returncode == 0, deployed.stderr
    first = deployed.stdout.splitlines()[0]
    assert first.startswith("plan: ml-training on runpod") and "$" in first
    assert f"${2 * a6000_price(fake):.2f}/h" in deployed.stdout.splitlines()[1]
    assert "ml-training is ready" in deployed.stdout
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == ["2", str(cfg.parent / "workspace")]
    row = json.loads(status.stdout)["environments"][0]
    assert row["state"] == "RUNNING" and row["phase"] == "ready"
    assert row["endpoint"] == f"{sshd.user}@127.0.0.1:{sshd.port}"
    assert workdir_mode == 0o700 and connection_file_there
    assert row["price_per_hour"] == pytest.approx(2 * a6000_price(fake))
    assert row["accrued_usd"] >= 0 and row["cost"].startswith("$")
    assert stopped.returncode == 0 and state_after_stop == "EXITED", stopped.stderr
    assert started.returncode == 0, started.stderr
    assert again.stdout == "4\n", again.stderr
    assert "confirmed gone" in destroyed.stdout, destroyed.stderr
    assert fake.live_pods() == [] and Store.default().find("ml-training") is None


def test_start_on_a_host_whose_gpus_are_taken_offers_a_fresh_pod(fake, env, cfg):
    assert sindri("deploy", "-f", str(cfg), "--no-wait").returncode == 0
    pod_id = fake.live_pods()[0]
    assert sindri("stop", "ml-training").returncode == 0
    fake.take_host_gpus(pod_id)

    started = sindri("start", "ml-training")
    destroyed = sindri("destroy", "ml-training", "--yes")

    assert started.returncode == 1
    assert "GPUs of its host are taken" in started.stderr
    assert "fresh pod" in started.stderr
    assert "sindri destroy ml-training --yes" in started.stderr
    assert "Traceback" not in started.stderr
    assert destroyed.returncode == 0 and fake.live_pods() == []


def test_pod_deleted_behind_our_back_shows_as_gone(fake, env, cfg):
    assert sindri("deploy", "-f", str(cfg), "--no-wait").returncode == 0
    fake.delete_out_of_band(fake.live_pods()[0])

    status = sindri("status")
    destroyed = sindri("destroy", "ml-training", "--yes")

    row = next(line for line in status.stdout.splitlines()
               if line.startswith("ml-training"))
    assert row.split()[:3] == ["ml-training", "runpod", "GONE"]
    assert destroyed.returncode == 0 and Store.default().find("ml-training") is None


def test_magics_deploy_run_destroy(fake, env, cfg, capsys):
    
    ip = ipython_shell()
    ip.run_line_magic("load_ext", "sindri_jupyter")

    ip.run_line_magic("sindri", f"deploy --wait -f {cfg}")
    ip.run_cell_magic("sindri", "run ml-training", "x = 1 + 1\nprint(x)")
    ip.run_line_magic("sindri", "destroy ml-training --yes")

    out = capsys.readouterr().out
    assert "2\n" in out
    assert "ml-training is destroyed and confirmed gone" in out
    assert fake.live_pods() == []
