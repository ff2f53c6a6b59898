"""The SSH transport against a real OpenSSH sshd on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import time
from pathlib import Path

import asyncssh
import pytest

from sindri_jupyter.errors import SSHError
from sindri_jupyter.remote import ssh, tunnels
from sindri_jupyter.remote.keys import ensure_key_pair, load_key_pair
from sindri_jupyter.remote.ssh import SSHTarget

pytestmark = pytest.mark.slow
DEADLINE_S = 30.0


def run(coro):
    """Run one async test body with an overall deadline."""
    return asyncio.run(asyncio.wait_for(coro, DEADLINE_S))


@pytest.fixture
def target(sshd, tmp_path: Path) -> SSHTarget:
    env = tmp_path / "env"
    pair = ensure_key_pair(env, comment="test-env")
    sshd.authorize(pair.public_key)
    return SSHTarget(
        name="t", host=sshd.host, port=sshd.port, user=sshd.user,
        key_path=pair.private_path, pin_path=env / "known_hosts",
    )


async def start_echo_servers(count: int) -> tuple[list, list[int]]:
    """Echo servers that answer each line with "<their port>:<line>"."""

    async def echo(reader, writer):
        port = writer.get_extra_info("sockname")[1]
        while line := await reader.readline():
            writer.write(b"%d:" % port + line)
            await writer.drain()
        writer.close()

    servers = [await asyncio.start_server(echo, "127.0.0.1", 0) for _ in range(count)]
    return servers, [s.sockets[0].getsockname()[1] for s in servers]


async def ask(port: int, text: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(text + b"\n")
    answer = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    return answer.strip()


def test_key_pair_is_private_and_stable(tmp_path: Path):
    env = tmp_path / "envs" / "demo"

    pair = ensure_key_pair(env)
    again = ensure_key_pair(env)

    assert stat.S_IMODE(pair.private_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(env.stat().st_mode) == 0o700
    assert pair.public_key.startswith("ssh-ed25519 ")
    assert again.public_key == pair.public_key
    assert "PRIVATE" not in repr(pair) and "PRIVATE" not in pair.public_key


def test_loose_key_mode_is_tightened(tmp_path: Path):
    pair = ensure_key_pair(tmp_path / "env")
    pair.private_path.chmod(0o644)

    load_key_pair(tmp_path / "env")

    assert stat.S_IMODE(pair.private_path.stat().st_mode) == 0o600


def test_first_contact_pins_host_key(target, sshd):
    async def body():
        async with await ssh.connect(target):
            pass

    run(body())

    alias, *key = target.pin_path.read_text().split()
    assert alias == "sindri-t"
    assert " ".join(key) == " ".join(sshd.host_public_key().split()[:2])


def test_changed_host_key_is_refused_with_hint(target):
    other = asyncssh.generate_private_key("ssh-ed25519")
    ssh.write_pin(target, other)

    with pytest.raises(SSHError) as caught:
        run(ssh.connect(target))

    assert caught.value.step == "host-key"
    assert str(target.pin_path) in caught.value.hint
    assert ssh.forget_pin(target)
    run(_connect_and_close(target))


async def _connect_and_close(target):
    conn = await ssh.connect(target)
    await conn.close()


def test_unknown_key_is_refused_at_auth(target, tmp_path):
    stranger = ensure_key_pair(tmp_path / "stranger")
    wrong = SSHTarget(**{**target.__dict__, "key_path": stranger.private_path})

    with pytest.raises(SSHError) as caught:
        run(ssh.connect(wrong))

    assert caught.value.step == "auth"
    assert str(stranger.private_path) in caught.value.hint


def test_refused_port_is_a_connect_error(target):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    nowhere = SSHTarget(**{**target.__dict__, "port": closed_port})

    with pytest.raises(SSHError) as caught:
        run(ssh.connect(nowhere))

    assert caught.value.step == "connect"
    assert str(closed_port) in caught.value.hint


def test_run_command_with_stdin(target):
    async def body():
        async with await ssh.connect(target) as conn:
            echoed = await conn.run("cat; echo done >&2", stdin="secret stays off argv")
            failed = await conn.run("exit 3", check=False)
            with pytest.raises(SSHError) as caught:
                await conn.run("echo boom >&2; exit 4")
        return echoed, failed, caught.value

    echoed, failed, error = run(body())

    assert echoed.stdout == "secret stays off argv" and echoed.stderr == "done\n"
    assert failed.exit_status == 3 and not failed.ok
    assert error.step == "command" and "boom" in error.message


def test_five_forwards_over_one_connection(target):
    async def body():
        servers, ports = await start_echo_servers(5)
        async with await ssh.connect(target) as conn:
            fwd = await tunnels.forward(conn, ports)
            answers = [await ask(fwd.local_ports[p], b"hi") for p in ports]
            await fwd.close()
        for s in servers:
            s.close()
        return ports, fwd.local_ports, answers

    ports, local_ports, answers = run(body())

    assert answers == [b"%d:hi" % p for p in ports]
    assert len(set(local_ports.values())) == 5
    assert not set(local_ports.values()) & set(ports)


def test_forwards_survive_a_dropped_connection(target, sshd):
    async def body():
        servers, ports = await start_echo_servers(5)
        link = tunnels.ReconnectingConnection(target, deadline_s=20)
        first = await link.start()
        fwd = await link.forward(ports)
        before = dict(fwd.local_ports)
        assert await ask(before[ports[0]], b"a") == b"%d:a" % ports[0]

        dropped = sshd.drop_connections()
        answers = [await _ask_until_answered(before[p], b"b") for p in ports]

        second = await link.current()
        await link.close()
        for s in servers:
            s.close()
        return dropped, before, fwd.local_ports, answers, ports, first, second

    dropped, before, after, answers, ports, first, second = run(body())

    assert dropped >= 1
    assert after == before
    assert answers == [b"%d:b" % p for p in ports]
    assert second is not first and first.is_closed


async def _ask_until_answered(port: int, text: bytes) -> bytes:
    """The first tries may land on the dying connection; later ones must work."""
    deadline = time.monotonic() + 20
    while True:
        try:
            return await ask(port, text)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.2)


def test_push_and_pull_a_folder(target, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "sub" / "b.bin").write_bytes(os.urandom(300_000))
    remote = str(tmp_path / "remote" / "data")
    seen = []

    def note(path, done, total):
        seen.append((path, done, total))

    async def body():
        async with await ssh.connect(target) as conn:
            first = await ssh.push(conn, src, remote, progress=note)
            again = await ssh.push(conn, src, remote)
            (src / "a.txt").write_text("alpha, longer now")
            changed = await ssh.push(conn, src, remote)
            back = await ssh.pull(conn, remote, tmp_path / "back")
        return first, again, changed, back

    first, again, changed, back = run(body())

    assert sorted(first.copied) == ["a.txt", "sub/b.bin"]
    assert again.copied == [] and sorted(again.skipped) == ["a.txt", "sub/b.bin"]
    assert changed.copied == ["a.txt"]
    assert sorted(back.copied) == ["a.txt", "sub/b.bin"]
    assert (tmp_path / "back" / "sub" / "b.bin").read_bytes() == (
        src / "sub" / "b.bin"
    ).read_bytes()
    assert seen[-1][1] == seen[-1][2] == first.bytes_copied


def test_sessions_and_sftp_start_in_the_fixture_home(target, sshd):
    async def body():
        async with await ssh.connect(target) as conn:
            home = await conn.run("echo $HOME")
            await conn.run("echo hi > ~/marker.txt")
            back = await ssh.pull(conn, "~/marker.txt", sshd.workdir / "pulled.txt")
        return home.stdout.strip(), back

    home, back = run(body())

    assert home == str(sshd.home.resolve())
    assert back.copied == ["marker.txt"]
    assert (sshd.workdir / "pulled.txt").read_text() == "hi\n"


def test_corrupt_pin_is_a_host_key_error(target):
    target.pin_path.parent.mkdir(parents=True, exist_ok=True)
    target.pin_path.write_text("sindri-t ssh-ed25519 not-base64!\n")

    with pytest.raises(SSHError) as caught:
        run(ssh.connect(target))

    assert caught.value.step == "host-key"
    assert str(target.pin_path) in caught.value.hint
