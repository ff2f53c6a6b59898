"""The ``sindri`` command line as a subprocess, the way users run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT, alive, sindri

EXAMPLE = str(ROOT / "examples" / "local.yaml")


def test_deploy_run_status_destroy_on_local(sindri_home):
    deployed = sindri("deploy", "-f", EXAMPLE)
    first = sindri("run", "quickstart", "--", "x = 20; print(1 + 1)")
    second = sindri("run", "quickstart", "--", "print(x * 2)")
    status = sindri("status", "--json")
    destroyed = sindri("destroy", "quickstart", "--yes")
    after = sindri("status", "--json")

    assert deployed.returncode == 0, deployed.stderr
    assert "$0.00/h" in deployed.stdout.splitlines()[1]
    assert first.stdout == "2\n"
    assert second.stdout == "40\n", "a later command must see earlier variables"
    [env] = json.loads(status.stdout)["environments"]
    assert (env["name"], env["state"], env["phase"]) == ("quickstart", "RUNNING", "ready")
    assert destroyed.returncode == 0 and "confirmed gone" in destroyed.stdout
    assert json.loads(after.stdout)["environments"] == []
    assert not (sindri_home / "envs" / "quickstart").exists()


def test_kernel_outlives_the_command_that_started_it(sindri_home):
    sindri("deploy", "--provider", "local", "--name", "keep")
    pid = int((sindri_home / "envs" / "keep" / "kernel" / "kernel.pid").read_text())

    os.kill(pid, 0)  # raises if the deploy command took the kernel with it
    assert sindri("run", "keep", "--", "print('alive')").stdout == "alive\n"
    sindri("destroy", "keep", "--yes")


def test_remote_exception_exits_1_and_shows_traceback():
    sindri("deploy", "--provider", "local", "--name", "err")

    result = sindri("run", "err", "--", "1/0")

    assert result.returncode == 1
    assert "ZeroDivisionError" in result.stderr
    sindri("destroy", "err", "--yes")


def test_run_reads_code_from_stdin_and_file(tmp_path):
    sindri("deploy", "--provider", "local", "--name", "io")
    script = tmp_path / "s.py"
    script.write_text("print('from file')\n")

    piped = sindri("run", "io", input="print('from stdin')\n")
    from_file = sindri("run", "io", "--file", str(script))

    assert piped.stdout == "from stdin\n" and from_file.stdout == "from file\n"
    sindri("destroy", "io", "--yes")


def test_bad_config_exits_2_with_file_line_and_key(tmp_path):
    bad = tmp_path / "sindri.yaml"
    bad.write_text("name: a\ndeployment:\n  provider: local\n  budget: 5\n")

    result = sindri("deploy", "-f", str(bad))

    assert result.returncode == 2
    assert f"{bad}:4:3: deployment.budget: unknown key 'budget'" in result.stderr
    assert "did you mean 'budget_usd'" in result.stderr


def test_usage_errors_exit_2_with_a_hint():
    unknown = sindri("launch")
    no_name = sindri("run")

    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr
    assert no_name.returncode == 2 and "--help" in no_name.stderr


def test_unknown_environment_is_bad_input_and_says_how_to_list():
    result = sindri("stop", "ghost")

    assert result.returncode == 2
    assert "no environment named 'ghost'" in result.stderr
    assert "sindri status --all" in result.stderr


def test_destroy_without_a_terminal_needs_yes():
    sindri("deploy", "--provider", "local", "--name", "keepme")

    refused = sindri("destroy", "keepme")

    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert sindri("status", "keepme").returncode == 0
    sindri("destroy", "keepme", "--yes")


def test_dry_run_creates_nothing():
    result = sindri("deploy", "-f", EXAMPLE, "--dry-run")

    assert result.returncode == 0 and "nothing was created" in result.stdout
    assert json.loads(sindri("status", "--json").stdout)["environments"] == []


def test_config_validate_reports_inapplicable_keys(tmp_path):
    config = tmp_path / "rp.yaml"
    config.write_text("name: a\ndeployment: {provider: runpod, image: 'img:1'}\n"
                      "providers:\n  runpod: {gpu_type_id: RTX 4090, compute_plan: big,"
                      " docker_args: x}\n")

    result = sindri("config", "validate", str(config))

    assert result.returncode == 0
    assert "providers.runpod.compute_plan: not applicable" in result.stdout
    assert "providers.runpod.docker_args: not applicable" in result.stdout


def test_config_schema_prints_the_json_schema():
    schema = json.loads(sindri("config", "schema").stdout)

    assert schema["title"] == "sindri.yaml"
    assert "deployment" in schema["properties"]


def test_doctor_fix_creates_a_private_key(sindri_home):
    before = sindri("doctor", "--json")
    fixed = sindri("doctor", "--fix", "--json")

    key = sindri_home / "keys" / "id_ed25519"
    checks = {c["name"]: c for c in json.loads(fixed.stdout)}
    assert before.returncode == 0, "a missing default key is not a failure"
    assert fixed.returncode == 0 and checks["ssh key"]["detail"].startswith("created")
    assert key.stat().st_mode & 0o777 == 0o600


def test_doctor_finds_and_fixes_a_stray_kernel(sindri_home):
    sindri("deploy", "--provider", "local", "--name", "stray")
    pid = int((sindri_home / "envs" / "stray" / "kernel" / "kernel.pid").read_text())
    (sindri_home / "state.sqlite").unlink()  # the record is lost, the kernel runs on

    found = sindri("doctor", "--json")
    fixed = sindri("doctor", "--fix", "--json")

    assert found.returncode == 1
    assert {c["name"]: c for c in json.loads(found.stdout)}["stray kernels"]["ok"] is False
    assert fixed.returncode == 0 and not alive(pid)
    assert not (sindri_home / "envs" / "stray").exists()


def test_status_is_plain_text_when_piped():
    sindri("deploy", "--provider", "local", "--name", "plain")

    result = sindri("status")

    assert result.stdout.splitlines()[0].split() == [
        "name", "provider", "state", "endpoint", "$/h", "uptime", "cost", "note"]
    assert "\x1b[" not in result.stdout
    sindri("destroy", "plain", "--yes")


def test_import_stays_light():
    code = ("import sys, sindri_jupyter; heavy = {'httpx', 'pydantic', 'asyncssh',"
            " 'ipywidgets', 'yaml', 'jupyter_client'} & set(sys.modules); print(sorted(heavy))")

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)

    assert result.stdout.strip() == "[]"


def test_python_dash_m_and_version():
    result = sindri("--version")

    assert result.returncode == 0 and result.stdout.startswith("sindri-jupyter ")


def test_redeploy_with_a_changed_config_says_it_keeps_the_old_settings(tmp_path):
    config = tmp_path / "sindri.yaml"
    config.write_text("name: same\n")
    sindri("deploy", "-f", str(config))
    config.write_text("name: same\ndeployment:\n  env: {A: '1'}\n")

    again = sindri("deploy", "-f", str(config))

    assert again.returncode == 0 and "the config changed" in again.stdout
    sindri("destroy", "same", "--yes")


def test_gpu_flag_beats_the_provider_section(tmp_path):
    import argparse

    from sindri_jupyter.cli.commands import resolve_config

    path = tmp_path / "gpu-flag.yaml"
    path.write_text("name: g\ndeployment: {provider: runpod, image: img}\n"
                    "providers:\n  runpod: {gpu_type_id: RTX A6000, gpu_count: 2}\n")
    args = argparse.Namespace(file=str(path), provider=None, name=None, gpu="RTX 4090")

    config, _ = resolve_config(args)

    assert config.providers.runpod.gpu_type_id == "RTX 4090"
    assert config.deployment.resources.gpu.type == "RTX 4090"


def test_status_all_lists_what_it_can_when_a_cloud_does_not_answer():
    sindri("deploy", "--provider", "local", "--name", "here")

    result = sindri("status", "--all", env={"RUNPOD_API_KEY": "rpa_x",
                                           "SINDRI_RUNPOD_API_URL": "http://127.0.0.1:9"})

    assert result.returncode == 0, result.stderr
    assert "here" in result.stdout and "could not list runpod" in result.stdout
    sindri("destroy", "here", "--yes")


def test_config_validate_runs_the_providers_offline_checks(tmp_path):
    config = tmp_path / "nf.yaml"
    config.write_text("name: nfp\ndeployment: {provider: northflank, image: 'nginx:1'}\n"
                      "providers:\n  northflank: {ports: [22]}\n")

    result = sindri("config", "validate", str(config))

    assert result.returncode == 2
    assert f"{config}: providers.northflank.ports: 22 is not a usable port" in result.stderr
