"""The sindri.yaml loader: positions, hints, implicit typing, aliases, secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sindri_jupyter.config import json_schema, load, loads
from sindri_jupyter.config.report import section_notes
from sindri_jupyter.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

RUNPOD_EXAMPLE = """\
name: ml-training
version: 3.1.0
deployment:
  provider: runpod
  image: pytorch/pytorch:2.0.1-cuda11.8-cudnn8-runtime

providers:
  runpod:
    name: my-ml-training
    gpu_type_id: NVIDIA_RTX_A6000
    gpu_count: 2
    compute_plan: "48-vcpu-90gb"
    volume_in_gb: 100
    docker_args: "--shm-size=8g"
"""

NORTHFLANK_EXAMPLE = """\
name: web-app
version: 3.1.0
deployment:
  provider: northflank
  image: node:20-alpine

providers:
  northflank:
    project_name: my-project
    service_name: web-app
    compute_plan: nf-compute-50
    instances: 2
    auto_scaling:
      enabled: true
      min_instances: 2
      max_instances: 10
      target_cpu_percent: 70
"""


def problems_of(text: str, env: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        loads(text, "sindri.yaml", env or {})
    return info.value.problems


def test_runpod_example_loads_and_reports_inapplicable_keys():
    config = loads(RUNPOD_EXAMPLE, "a.yaml", {})

    notes = {n.key: n for n in section_notes(config)}

    assert config.providers.runpod.gpu_count == 2
    assert config.providers.runpod.docker_args == "--shm-size=8g"
    assert notes["providers.runpod.compute_plan"].treatment == "not applicable"
    assert "compute plan" in notes["providers.runpod.compute_plan"].detail
    assert "Docker runtime flags" in notes["providers.runpod.docker_args"].detail


def test_northflank_example_loads_unchanged():
    config = loads(NORTHFLANK_EXAMPLE, "b.yaml", {})

    section = config.providers.northflank
    assert (section.instances, section.compute_plan) == (2, "nf-compute-50")
    assert section.auto_scaling.enabled is True
    assert section.auto_scaling.max_instances == 10
    assert config.version == "3.1.0"


def test_unknown_key_names_file_line_column_and_suggests():
    problems = problems_of("name: a\ndeployment:\n  idle_stop_minuts: 5\n")

    assert problems == ["sindri.yaml:3:3: deployment.idle_stop_minuts: unknown key "
                        "'idle_stop_minuts'; did you mean 'idle_stop_minutes'?"]


def test_enum_error_lists_allowed_values():
    text = "name: a\nproviders:\n  runpod: {cloud_type: secure}\n"

    [problem] = problems_of(text)

    assert problem.startswith("sindri.yaml:3:24: providers.runpod.cloud_type:")
    assert "SECURE, COMMUNITY" in problem


def test_wrong_type_names_expected_type_and_found_value():
    [problem] = problems_of("name: a\ndeployment:\n  budget_usd: lots\n")

    assert "expected a number, found 'lots'" in problem
    assert problem.startswith("sindri.yaml:3:15:")


def test_text_is_kept_as_written_not_turned_into_numbers_or_booleans():
    text = "name: a\nversion: 3.10\ndeployment:\n  env: {A: 0755, B: no, C: 1e3}\n"

    config = loads(text, "s.yaml", {})

    assert config.version == "3.10"
    assert config.deployment.env == {"A": "0755", "B": "no", "C": "1e3"}


def test_quoted_number_is_not_silently_made_a_number():
    [problem] = problems_of('name: a\ndeployment:\n  resources: {disk_gb: "50"}\n')

    assert "quoted text '50'" in problem


def test_yaml11_boolean_words_are_refused_for_booleans():
    text = "name: a\nproviders:\n  northflank:\n    auto_scaling: {enabled: yes}\n"

    [problem] = problems_of(text)

    assert "ambiguous" in problem and "true or false" in problem


def test_camel_case_aliases_of_the_rust_tool_are_accepted():
    text = ("name: a\nproviders:\n  runpod: {gpuTypeId: NVIDIA_RTX_A6000, gpuCount: 1,"
            " cloudType: COMMUNITY, volumeInGb: 20, dataCenterIds: [EU-RO-1]}\n")

    section = loads(text, "s.yaml", {}).providers.runpod

    assert section.gpu_type_id == "NVIDIA_RTX_A6000"
    assert section.cloud_type == "COMMUNITY"
    assert section.data_center_ids == ["EU-RO-1"]


def test_env_vars_are_expanded_with_defaults_and_typed_by_field():
    text = ("name: ${ENV_NAME}\ndeployment:\n  budget_usd: ${BUDGET:-5}\n"
            '  env: {HF_HOME: "${HF}"}\n')

    config = loads(text, "s.yaml", {"ENV_NAME": "exp1", "HF": "/data/hf"})

    assert config.name == "exp1"
    assert config.deployment.budget_usd == 5.0
    assert config.deployment.env == {"HF_HOME": "/data/hf"}


def test_missing_env_var_says_what_to_export():
    [problem] = problems_of("name: ${NOPE}\n")

    assert "NOPE is not set" in problem and "export NOPE=" in problem


def test_literal_token_is_refused_without_echoing_it():
    secret = "rpa_ABCDEFGHIJKLMNOPQRSTUVWX"
    text = f"name: a\ndeployment:\n  env: {{RUNPOD_API_KEY: {secret}}}\n"

    [problem] = problems_of(text)

    assert "literal secret" in problem and "${" in problem
    assert secret not in problem


def test_token_from_environment_is_accepted():
    text = "name: a\ndeployment:\n  env:\n    HF_TOKEN: ${HF_TOKEN}\n"

    config = loads(text, "s.yaml", {"HF_TOKEN": "hf_abcdefghijklmnop"})

    assert config.deployment.env["HF_TOKEN"] == "hf_abcdefghijklmnop"


def test_every_problem_is_reported_at_once_in_line_order():
    text = "name: a\nbogus: 1\ndeployment:\n  provider: runpd\n  budget_usd: x\n"

    problems = problems_of(text)

    assert [p.split(":")[1] for p in problems] == ["2", "4", "5"]
    assert "did you mean 'runpod'" in problems[1]


def test_yaml_syntax_error_has_position():
    [problem] = problems_of("name: a\ndeployment: [\n")

    assert problem.startswith("sindri.yaml:3:1: YAML syntax")


def test_unquoted_variable_in_flow_mapping_gets_a_quoting_hint():
    with pytest.raises(ConfigError) as info:
        loads("name: a\ndeployment:\n  env: {A: ${B}}\n", "s.yaml", {"B": "1"})

    assert 'quote a variable: write "${VAR}"' in str(info.value)


def test_unsupported_version_is_explained():
    [problem] = problems_of("name: a\nversion: '2.0'\n")

    assert "not supported" in problem and "3.x" in problem


def test_missing_file_says_what_to_pass(tmp_path):
    with pytest.raises(ConfigError) as info:
        load(tmp_path / "nope.yaml")

    assert "no such file" in str(info.value) and "-f FILE" in str(info.value)


def test_schema_file_is_generated_and_fresh():
    on_disk = json.loads((ROOT / "schemas" / "sindri.schema.json").read_text())

    assert on_disk == json_schema(), "run: sindri config schema > schemas/sindri.schema.json"


def test_examples_in_the_repo_load():
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        assert load(path).name


def test_retired_spot_pods_get_a_clear_reason():
    text = ("name: a\nproviders:\n  runpod:\n    cloud_type: SPOT\n"
            "    bidPerGpu: 0.2\n    interruptible: true\n")

    problems = problems_of(text)

    assert len(problems) == 3
    assert all("retired" in p and "removed from RunPod's API" in p for p in problems)


def test_version_problem_points_at_the_version_line():
    [problem] = problems_of("name: a\nversion: '4.0'\n")

    assert problem.startswith("sindri.yaml:2:10: version:") and "3.x" in problem


def test_secrets_and_value_errors_are_all_reported_at_once():
    text = ("name: 'bad name!'\ndeployment:\n  env: {HF_TOKEN: hf_literal}\n"
            "  budget_usd: -3\n  resources: {gpu: {type: A100, count: 0}}\n")

    problems = problems_of(text)

    assert [p.split(":")[1] for p in problems] == ["1", "3", "4", "5"]
    assert "not a usable name" in problems[0]
    assert "write ${HF_TOKEN}" in problems[1]
