"""``sindri attach``: a kernelspec whose provisioner drives the environment kernel."""

from __future__ import annotations

import asyncio
import json

import pytest
from jupyter_client.manager import AsyncKernelManager

from sindri_jupyter.core.state import Store
from tests.conftest import sindri
from tests.test_ssh_e2e import ssh_config  # noqa: F401 - a fixture


@pytest.fixture
def jupyter_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))
    return tmp_path / "jupyter-data"


async def _execute(km: AsyncKernelManager, code: str) -> list[str]:
    client = km.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        texts: list[str] = []

        def hook(msg):
            if msg["header"]["msg_type"] == "stream":
                texts.append(msg["content"]["text"])

        reply = await client.execute_interactive(code, output_hook=hook, timeout=60)
        assert reply["content"]["status"] in ("ok", "error")
        return texts
    finally:
        client.stop_channels()


def test_attach_installs_a_kernelspec_that_jupyter_can_start(jupyter_dirs):
    assert sindri("deploy", "--provider", "local", "--name", "lab").returncode == 0
    sindri("run", "lab", "--", "shared = 'from sindri run'")

    attached = sindri("attach", "lab")
    spec = json.loads((jupyter_dirs / "kernels" / "sindri-lab" / "kernel.json").read_text())

    assert attached.returncode == 0, attached.stderr
    assert spec["display_name"] == "Sindri: lab (local)"
    assert spec["interrupt_mode"] == "message"
    provisioner = spec["metadata"]["kernel_provisioner"]
    assert provisioner["provisioner_name"] == "sindri-provisioner"

    async def session():
        km = AsyncKernelManager(kernel_name="sindri-lab")
        await km.start_kernel()
        seen = await _execute(km, "print(shared)")
        client = km.client()
        client.start_channels()
        await client.wait_for_ready(timeout=60)
        client.execute("import time; time.sleep(60)")
        await asyncio.sleep(1.0)
        started = asyncio.get_running_loop().time()
        await km.interrupt_kernel()
        while True:
            msg = await client.get_shell_msg(timeout=30)
            if msg["header"]["msg_type"] == "execute_reply":
                break
        took = asyncio.get_running_loop().time() - started
        client.stop_channels()
        await km.restart_kernel()
        after_restart = await _execute(km, "print('shared' in globals())")
        await km.shutdown_kernel()
        return seen, msg["content"]["ename"], took, after_restart

    seen, ename, took, after_restart = asyncio.run(session())

    assert seen == ["from sindri run\n"], "the notebook sees the environment's kernel"
    assert ename == "KeyboardInterrupt" and took < 15
    assert after_restart == ["False\n"], "a restart gives a fresh kernel"
    record = Store.default().get("lab")
    assert record.handle_data["kernel"]["pid"] > 0
    after = sindri("run", "lab", "--", "print('shared' in globals())")
    assert after.stdout == "False\n" and "started a fresh one" in after.stderr
    sindri("destroy", "lab", "--yes")
    assert not (jupyter_dirs / "kernels" / "sindri-lab").exists()


def test_ssh_environment_attaches_with_a_blocking_client(jupyter_dirs, ssh_config):
    """jupyter-run and start_new_kernel use blocking managers: one loop per call."""
    from jupyter_client.manager import start_new_kernel

    assert sindri("deploy", "-f", str(ssh_config)).returncode == 0
    assert sindri("attach", "lab").returncode == 0

    km, client = start_new_kernel(kernel_name="sindri-lab", startup_timeout=60)
    try:
        texts: list[str] = []
        client.execute_interactive(
            "import os; print(os.environ['SINDRI_ENVIRONMENT'])", timeout=60,
            output_hook=lambda m: texts.append(m["content"].get("text", "")))
        alive = km.is_alive()
    finally:
        client.stop_channels()
        km.shutdown_kernel()

    assert "".join(texts) == "lab\n" and alive
    assert sindri("destroy", "lab", "--yes").returncode == 0
