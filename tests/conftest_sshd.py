"""The session-wide ``sshd`` fixture: a real OpenSSH server on 127.0.0.1.

Use it from ``tests/conftest.py`` with ``from tests.conftest_sshd import *`` or
``pytest_plugins = ["tests.conftest_sshd"]``. The server runs as the current
user with its own config, host key and authorized keys in a temporary folder;
a missing ``/usr/sbin/sshd`` fails the test with the command to run, it is not
skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sshd import SshdMissing, SshServer, start_sshd

__all__ = ["sshd"]


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """A running sshd: ``host``, ``port``, ``user``, ``authorize(pubkey)``,
    ``drop_connections()``."""
    try:
        server = start_sshd(tmp_path_factory.mktemp("sshd"))
    except SshdMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()
