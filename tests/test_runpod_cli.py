"""`sindri gpus` and `sindri doctor` for the cloud providers, as a user runs them.

The CLI runs as a subprocess against the fake RunPod and the fake Northflank;
faults are injected into the fakes from the test process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sindri_jupyter.testing.fake_northflank import FakeNorthflank
from sindri_jupyter.testing.fake_runpod import FakeRunPod
from tests.conftest import sindri

STANDIN = Path(__file__).parent / "northflank_cli_standin"


@pytest.fixture
def runpod():
    with FakeRunPod() as server:
        yield server


@pytest.fixture
def northflank():
    with FakeNorthflank(tokens=("test-token",)) as server:
        yield server


def runpod_env(fake, key=None) -> dict[str, str]:
    return {"RUNPOD_API_KEY": key or fake.api_key, "SINDRI_RUNPOD_API_URL": fake.url}


def northflank_env(fake, token="test-token") -> dict[str, str]:
    return {"NORTHFLANK_API_TOKEN": token, "SINDRI_NORTHFLANK_API_URL": fake.url,
            "PATH": f"{STANDIN}{os.pathsep}{os.environ['PATH']}"}


def prices(rows):
    return [r["price_per_hour"] for r in rows if r["price_per_hour"] is not None]


def test_runpod_gpus_lists_vram_both_prices_and_availability(runpod):
    shown = sindri("gpus", "--provider", "runpod", "--json", env=runpod_env(runpod))

    rows = json.loads(shown.stdout)
    a6000 = next(r for r in rows if r["id"] == "NVIDIA RTX A6000")
    assert shown.returncode == 0, shown.stderr
    assert {r["provider"] for r in rows} == {"runpod"}
    assert a6000["vram_gb"] == 48
    assert a6000["price_per_hour"] == runpod.gpus["NVIDIA RTX A6000"]["price"]["secure"]
    assert a6000["community_price_per_hour"] == \
        runpod.gpus["NVIDIA RTX A6000"]["price"]["community"]
    assert a6000["availability"] in ("LOW", "MEDIUM", "HIGH", "NONE")
    assert prices(rows) == sorted(prices(rows))


def test_runpod_gpus_filters_by_minimum_vram_and_shows_a_table(runpod):
    filtered = sindri("gpus", "--provider", "runpod", "--min-vram", "80", "--json",
                      env=runpod_env(runpod))
    table = sindri("gpus", "--provider", "runpod", env=runpod_env(runpod))

    rows = json.loads(filtered.stdout)
    assert rows and all(r["vram_gb"] >= 80 for r in rows)
    assert table.returncode == 0 and "NVIDIA RTX A6000" in table.stdout


def test_northflank_gpus_lists_price_per_gpu_hour_and_regions(northflank):
    shown = sindri("gpus", "--provider", "northflank", "--json",
                   env=northflank_env(northflank))

    rows = json.loads(shown.stdout)
    l4 = next(r for r in rows if r["id"] == "l4-24")
    assert shown.returncode == 0, shown.stderr
    assert l4["vram_gb"] == 24 and l4["price_per_hour"] == pytest.approx(0.27 + 0.80)
    assert "us-central" in l4["regions"] and l4["availability"].startswith("offered in")
    assert prices(rows) == sorted(prices(rows))


def test_gpus_without_provider_skips_clouds_without_credentials(runpod):
    none = sindri("gpus", "--json")
    only_runpod = sindri("gpus", "--json", env=runpod_env(runpod))

    assert none.returncode == 0, none.stderr
    assert {r["provider"] for r in json.loads(none.stdout)} <= {"local"}
    assert only_runpod.returncode == 0, only_runpod.stderr
    assert {r["provider"] for r in json.loads(only_runpod.stdout)} - {"local"} == \
        {"runpod"}


def test_gpus_without_provider_lists_every_cloud_with_credentials(runpod, northflank):
    both = sindri("gpus", "--json", "--min-vram", "24",
                  env={**runpod_env(runpod), **northflank_env(northflank)})

    rows = json.loads(both.stdout)
    assert both.returncode == 0, both.stderr
    assert {"runpod", "northflank"} <= {r["provider"] for r in rows}
    assert prices(rows) == sorted(prices(rows))


def test_runpod_doctor_accepts_a_good_key(runpod):
    checked = sindri("doctor", "--provider", "runpod", "--fix", env=runpod_env(runpod))

    assert checked.returncode == 0, checked.stdout
    assert f"ok   runpod API key: accepted by {runpod.url}" in checked.stdout


def test_runpod_doctor_explains_a_refused_key(runpod):
    checked = sindri("doctor", "--provider", "runpod", "--fix",
                     env=runpod_env(runpod, key="wrong-key"))

    assert checked.returncode == 1
    assert "FAIL runpod API key:" in checked.stdout
    assert "fix: RunPod did not accept the key in RUNPOD_API_KEY" in checked.stdout
    assert "export RUNPOD_API_KEY=" in checked.stdout
    assert "Traceback" not in checked.stdout + checked.stderr


def test_runpod_doctor_explains_a_missing_scope(runpod):
    runpod.inject("list_pods", status=403)

    checked = sindri("doctor", "--provider", "runpod", "--fix", env=runpod_env(runpod))

    assert checked.returncode == 1
    assert "FAIL runpod API key:" in checked.stdout
    assert "lacks a scope" in checked.stdout and "Pods" in checked.stdout


def test_runpod_doctor_without_a_key_says_where_to_get_one():
    checked = sindri("doctor", "--provider", "runpod", "--fix")

    assert checked.returncode == 1
    assert "FAIL runpod API key: RUNPOD_API_KEY is not set" in checked.stdout
    assert "export RUNPOD_API_KEY=" in checked.stdout


def test_northflank_doctor_checks_token_cli_and_login(northflank):
    checked = sindri("doctor", "--provider", "northflank", "--fix",
                     env=northflank_env(northflank))

    assert checked.returncode == 0, checked.stdout
    assert "ok   northflank API token: accepted by" in checked.stdout
    assert "ok   northflank CLI:" in checked.stdout
    assert "ok   northflank CLI login" in checked.stdout


@pytest.mark.parametrize("token, fault, words", [
    ("wrong-token", None, "Northflank refused the token"),
    ("test-token", 403, "role"),
])
def test_northflank_doctor_explains_401_and_403(northflank, token, fault, words):
    if fault:
        northflank.inject("get_auth", status=fault)

    checked = sindri("doctor", "--provider", "northflank", "--fix",
                     env=northflank_env(northflank, token))

    assert checked.returncode == 1
    assert "FAIL northflank API token:" in checked.stdout
    assert words in checked.stdout and "NORTHFLANK_API_TOKEN" in checked.stdout
    assert "Traceback" not in checked.stdout + checked.stderr


@pytest.mark.parametrize("line", ["interruptible: true", "cloud_type: SPOT",
                                  "bid_per_gpu: 0.2"])
def test_spot_keys_are_refused_before_anything_is_created(runpod, tmp_path, line):
    from tests.test_runpod_e2e import EXAMPLE

    cfg = tmp_path / "sindri.yaml"
    cfg.write_text(EXAMPLE + f"    {line}\n")

    refused = sindri("deploy", "-f", str(cfg), "--dry-run", env=runpod_env(runpod))

    assert refused.returncode == 2
    assert "spot (interruptible) pods were removed from RunPod's API" in refused.stderr
    assert runpod.count() == 0


def test_gpus_without_provider_leaves_out_an_unreachable_cloud(runpod):
    closed = "http://127.0.0.1:9"  # discard port: nothing listens there
    both = sindri("gpus", "--json", env={**runpod_env(runpod),
                                         "NORTHFLANK_API_TOKEN": "nf-token",
                                         "SINDRI_NORTHFLANK_API_URL": closed})

    assert both.returncode == 0, both.stderr
    assert {r["provider"] for r in json.loads(both.stdout)} - {"local"} == {"runpod"}
    assert "GPUs of northflank left out" in both.stderr
    assert "sindri gpus --provider northflank" in both.stderr
