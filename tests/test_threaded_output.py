"""Under nbclient, a background update lands in the cell that started the deploy.

The deploy is slowed down (its Python sleeps 2 s before starting) so that it is
certainly still running when the first cell has ended and the second one runs.
"""

from __future__ import annotations

import json
import sys

import nbformat
from nbclient import NotebookClient

WAIT_IN_OTHER_CELL = """\
import time
from sindri_jupyter.frontends import deploying
started = deploying.latest("threaded")
at_start = started.future.done()
deadline = time.monotonic() + 90
while not started.future.done() and time.monotonic() < deadline:
    time.sleep(0.1)
time.sleep(1.0)  # the last update reaches IOPub while this cell still runs
print("second cell: done at start", at_start, "done now", started.future.done())
"""


def slow_python(tmp_path) -> str:
    wrapper = tmp_path / "slow-python"
    wrapper.write_text(f"#!/bin/sh\nsleep 2\nexec {sys.executable} \"$@\"\n")
    wrapper.chmod(0o755)
    return str(wrapper)


def test_background_update_lands_in_the_starting_cell(tmp_path, sindri_home):
    config = tmp_path / "slow.yaml"
    config.write_text("name: threaded\ndeployment:\n  provider: local\n"
                      f"providers:\n  local:\n    python: {slow_python(tmp_path)}\n")
    cells = [
        (f"import os\nos.environ['SINDRI_HOME'] = {str(sindri_home)!r}\n"
         "%load_ext sindri_jupyter"),
        f"%sindri deploy -f {config}",
        WAIT_IN_OTHER_CELL,
        "%sindri destroy threaded --yes",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])

    NotebookClient(nb, timeout=120, kernel_name="python3").execute()

    [deploy_out] = nb.cells[1].outputs
    text = deploy_out["data"]["text/plain"]
    other = json.dumps(nb.cells[2].outputs)
    assert "second cell: done at start False done now True" in other
    assert "threaded on local: ready" in text and "[x] kernel" in text
    assert "threaded on local" not in other, "nothing leaks into the running cell"
    widgets = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]
    styles = [m["state"].get("bar_style") for m in widgets["state"].values()
              if m["model_name"] == "IntProgressModel"]
    assert styles == ["success"], "the widget model saw the end of the deploy too"
