"""The example notebooks are tests: they run under nbval, and leak no secret.

``test_notebooks_pass_nbval_lax`` runs ``pytest --nbval-lax`` on ``notebooks/``
in a subprocess, so the README's test command covers the notebooks without
collecting them itself. ``test_no_secret_in_any_output`` executes every
notebook with fake credentials in the kernel's environment and scans every
output and the saved widget state for them, for private keys, and for kernel
HMAC keys (64 hex digits).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from sindri_jupyter.testing.rehearsal import (
    REHEARSAL_NORTHFLANK_TOKEN,
    REHEARSAL_RUNPOD_KEY,
)
from tests.conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
FAKE_SECRETS = {
    "RUNPOD_API_KEY": "rpa_FAKE0TOKEN0FOR0TESTS0ONLY0a1b2c3d4e5f",
    "NORTHFLANK_API_TOKEN": "nf-FAKE-TOKEN-FOR-TESTS-ONLY-9f8e7d6c5b4a",
}
# With tokens set, catalogs are asked for: keep every call on a closed loopback port.
OFFLINE_URLS = {"SINDRI_RUNPOD_API_URL": "http://127.0.0.1:9",
                "SINDRI_NORTHFLANK_API_URL": "http://127.0.0.1:9"}
# runpod.ipynb and northflank.ipynb replace the credentials with the rehearsal's.
REHEARSAL_SECRETS = (REHEARSAL_RUNPOD_KEY, REHEARSAL_NORTHFLANK_TOKEN)
FORBIDDEN = [re.compile(re.escape(v))
             for v in (*FAKE_SECRETS.values(), *REHEARSAL_SECRETS)] + [
    re.compile(r"PRIVATE KEY"),
    re.compile(r"\b[0-9a-f]{64}\b"),  # a kernel HMAC key (secrets.token_hex(32))
]


def test_there_are_notebooks_to_test():
    names = {p.name for p in NOTEBOOKS}

    assert {"quickstart.ipynb", "workshop.ipynb", "ssh.ipynb", "runpod.ipynb",
            "northflank.ipynb"} <= names


def test_notebooks_pass_nbval_lax(tmp_path):
    env = {**os.environ, **FAKE_SECRETS, **OFFLINE_URLS,
           "SINDRI_HOME": str(tmp_path / "home")}

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
         "--nbval-sanitize-with", str(ROOT / "notebooks" / "sanitize.cfg"),
         "--rootdir", str(ROOT), *map(str, NOTEBOOKS)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=900, check=False)

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_secret_in_any_output(path, monkeypatch):
    for name, value in {**FAKE_SECRETS, **OFFLINE_URLS}.items():
        monkeypatch.setenv(name, value)
    nb = nbformat.read(path, as_version=4)

    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()

    texts = [json.dumps(cell.get("outputs", [])) for cell in nb.cells]
    texts.append(json.dumps(nb.metadata.get("widgets", {})))
    leaks = [(i, pattern.pattern) for i, text in enumerate(texts)
             for pattern in FORBIDDEN if pattern.search(text)]
    assert sum(len(cell.get("outputs", [])) for cell in nb.cells) > 0
    assert leaks == [], f"secret-looking text in cells {leaks}"
