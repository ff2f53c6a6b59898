"""The ssh provider end to end: a real sshd on 127.0.0.1 and a real remote kernel."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from sindri_jupyter.config import loads
from sindri_jupyter.core import sync
from sindri_jupyter.core.engine import Engine
from sindri_jupyter.core.state import Store
from sindri_jupyter.remote import sessions
from sindri_jupyter.remote.keys import ensure_key_pair
from tests.conftest import alive, sindri


@pytest.fixture
def ssh_config(sshd, tmp_path):
    """A four-line sindri.yaml for the test sshd, with an authorized user key."""
    pair = ensure_key_pair(tmp_path / "user-key")
    sshd.authorize(pair.public_key)
    path = tmp_path / "sindri.yaml"
    path.write_text(
        "name: lab\n"
        "deployment: {provider: ssh}\n"
        f"providers:\n  ssh: {{host: 127.0.0.1, port: {sshd.port}, user: {sshd.user},\n"
        f"         identity_file: {pair.private_path}, python: {sys.executable}}}\n")
    return path


def execute(name: str, code: str):
    outputs: list[tuple[str, dict]] = []

    async def go():
        session = await sessions.session(name)
        return await session.execute(code, lambda k, c: outputs.append((k, c)))

    return sync.run(go()), outputs


def kernel_pid(name: str) -> int:
    return Store.default().get(name).handle_data["kernel"]["pid"]




def test_deploy_run_drop_interrupt_files_destroy(ssh_config, sshd, tmp_path):
    config = loads(ssh_config.read_text(), str(ssh_config))
    engine = Engine()
    record = sync.run(engine.deploy(config, config_path=str(ssh_config)))
    assert record.phase == "ready" and record.endpoint["kind"] == "ssh"

    result, _ = execute("lab", "x = 41")
    assert result.ok
    result, outputs = execute(
        "lab", "from IPython.display import HTML, display\n"
        "print('out'); import sys; print('err', file=sys.stderr)\n"
        "display(HTML('<b>rich</b>'))\nx + 1")
    kinds = [(k, c.get("name") or sorted(c.get("data", {}))) for k, c in outputs]
    assert kinds == [("stream", "stdout"), ("stream", "stderr"),
                     ("display_data", ["text/html", "text/plain"]),
                     ("execute_result", ["text/plain"])]
    assert outputs[-1][1]["data"]["text/plain"] == "42"

    dropped = sshd.drop_connections()
    result, outputs = execute("lab", "print(x)")
    assert dropped >= 1
    assert result.ok and outputs == [("stream", {"name": "stdout", "text": "41\n"})]

    async def interrupt_sleep():
        session = await sessions.session("lab")
        task = asyncio.ensure_future(session.execute("import time; time.sleep(60)",
                                                     lambda k, c: None))
        await asyncio.sleep(1.0)
        started = time.monotonic()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        await session.lock.acquire()
        session.lock.release()
        return time.monotonic() - started

    assert sync.run(interrupt_sleep()) < 15
    result, outputs = execute("lab", "print(x)")
    assert result.ok and outputs[0][1]["text"] == "41\n"

    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("alpha")
    (folder / "sub" / "b.txt").write_text("beta")
    remote = str(tmp_path / "on-host" / "pushed")
    first = sindri("push", "lab", str(folder), remote)
    again = sindri("push", "lab", str(folder), remote)
    pulled = sindri("pull", "lab", remote, str(tmp_path / "back"))
    assert "pushed 2 file(s), 0 unchanged" in first.stdout, first.stderr
    assert "pushed 0 file(s), 2 unchanged" in again.stdout
    assert pulled.returncode == 0
    assert (tmp_path / "back" / "sub" / "b.txt").read_text() == "beta"

    pid = kernel_pid("lab")
    sync.run(sessions.close_all())
    sync.run(engine.destroy("lab"))
    assert Store.default().find("lab") is None
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid), "destroy must leave no kernel process on the host"


def test_cli_run_sees_variables_across_commands_over_ssh(ssh_config):
    deployed = sindri("deploy", "-f", str(ssh_config))
    first = sindri("run", "lab", "--", "y = 7")
    second = sindri("run", "lab", "--", "print(y * 6)")
    destroyed = sindri("destroy", "lab", "--yes")

    assert deployed.returncode == 0, deployed.stderr
    assert first.returncode == 0, first.stderr
    assert second.stdout == "42\n", second.stderr
    assert destroyed.returncode == 0


def test_missing_ipykernel_is_installed_into_a_private_venv(sshd, tmp_path):
    """A host whose Python lacks ipykernel gets it in ~/.sindri/envs/NAME/.venv."""
    import subprocess

    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    pair = ensure_key_pair(tmp_path / "user-key")
    sshd.authorize(pair.public_key)
    path = tmp_path / "sindri.yaml"
    path.write_text(
        "name: bare\ndeployment: {provider: ssh}\n"
        f"providers:\n  ssh: {{host: 127.0.0.1, port: {sshd.port}, user: {sshd.user},\n"
        f"         identity_file: {pair.private_path}, python: {bare}/bin/python}}\n")

    deployed = sindri("deploy", "-f", str(path), timeout=300)
    ran = sindri("run", "bare", "--", "import sys; print(sys.prefix)")
    destroyed = sindri("destroy", "bare", "--yes")

    assert deployed.returncode == 0, deployed.stderr
    assert "had no ipykernel: installed it into" in deployed.stdout
    assert ran.stdout.strip().endswith("/.sindri/envs/bare/.venv")
    assert destroyed.returncode == 0
