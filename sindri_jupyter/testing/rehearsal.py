"""Offline rehearsal: a fake cloud and an sshd in one call, for instructors.

Before a course, an instructor can walk through a RunPod or Northflank notebook
with no account and no bill: the fake API runs on 127.0.0.1 in this process,
and each "pod" or "service" is a local OpenSSH server that accepts the
environment's key, as a RunPod image or Northflank's SSH gateway would.

    from tests.sshd import start_sshd          # any object with host, port, user,
    sshd = start_sshd(work / "sshd")           # authorize(line) and stop()
    rehearsal = start_runpod_rehearsal(sshd)
    os.environ.update(rehearsal.env)           # fake key and the fake's URL
    ...                                        # %sindri deploy, run, destroy
    rehearsal.stop()                           # the fake, then the sshd

The credentials are fixed fake values (``REHEARSAL_RUNPOD_KEY``,
``REHEARSAL_NORTHFLANK_TOKEN``), never a real key: the test suite scans every
notebook output for them. ``env`` is kept out of the object's repr so that
displaying it shows no credential.

Each key handed to the sshd gets a forced command that puts this interpreter's
folder first on ``PATH``, so the "machine" has a ``python3`` with ipykernel,
like RunPod's PyTorch images. Northflank's SSH goes through its CLI in proxy
mode; the rehearsal puts the stand-in CLI (``tests/northflank_cli_standin``)
first on ``PATH`` and points it at the sshd. The stand-in logs in as the user
the Northflank provider uses (``root``), so that rehearsal needs an sshd run as
root, as in CI.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sindri_jupyter.errors import UsageError
from sindri_jupyter.testing.fake_northflank import FakeNorthflank
from sindri_jupyter.testing.fake_runpod import FakeRunPod

log = logging.getLogger(__name__)

REHEARSAL_RUNPOD_KEY = "rpa_REHEARSAL0FAKE0KEY0NOT0A0SECRET0000"
REHEARSAL_NORTHFLANK_TOKEN = "nf-REHEARSAL-FAKE-TOKEN-NOT-A-SECRET"
# Seconds a fake pod spends PROVISIONING, then STARTING: long enough for the
# deploy panel to show the phases, short enough for a notebook under test.
POD_PHASE_SECONDS = 1.0


class SshServerLike(Protocol):
    """What the rehearsal needs of an sshd (``tests.sshd.SshServer`` fits)."""

    host: str
    port: int
    user: str

    def authorize(self, public_key: str) -> None: ...

    def stop(self) -> None: ...


@dataclass
class Rehearsal:
    """A running fake cloud: the variables to export, and how to end it."""

    provider: str
    url: str
    env: dict[str, str] = field(repr=False)
    _stops: list[Callable[[], None]] = field(repr=False)

    def stop(self) -> None:
        """Stop the fake API, then the sshd it was given (each once)."""
        while self._stops:
            self._stops.pop(0)()
        log.info("%s rehearsal stopped", self.provider)


def start_runpod_rehearsal(sshd: SshServerLike, *,
                           phase_seconds: float = POD_PHASE_SECONDS) -> Rehearsal:
    """Start a fake RunPod whose pods are reached through ``sshd``.

    ``env`` holds ``RUNPOD_API_KEY`` (a fake key) and ``SINDRI_RUNPOD_API_URL``.
    """
    fake = FakeRunPod(api_key=REHEARSAL_RUNPOD_KEY, ssh_host=sshd.host,
                      ssh_port=sshd.port, ssh_user=sshd.user,
                      provision_seconds=phase_seconds, start_seconds=phase_seconds,
                      authorize=lambda key: sshd.authorize(image_key_line(key)))
    fake.start()
    log.info("fake RunPod at %s, pods reach sshd on port %s", fake.url, sshd.port)
    env = {"RUNPOD_API_KEY": REHEARSAL_RUNPOD_KEY, "SINDRI_RUNPOD_API_URL": fake.url}
    return Rehearsal("runpod", fake.url, env, [fake.stop, sshd.stop])


def start_northflank_rehearsal(sshd: SshServerLike, cli_standin: Path) -> Rehearsal:
    """Start a fake Northflank whose services are reached through ``sshd``.

    ``cli_standin`` is the folder holding the stand-in ``northflank`` program;
    ``env`` puts it first on ``PATH`` and holds ``NORTHFLANK_API_TOKEN`` (a
    fake token), ``SINDRI_NORTHFLANK_API_URL`` and the stand-in's sshd address.
    The rollout is instant: sindri paces Northflank status polls to 12 s or
    more, so a slow fake rollout would make every deploy wait that long.
    """
    program = Path(cli_standin).resolve() / "northflank"
    if not os.access(program, os.X_OK):
        raise UsageError(
            f"no executable stand-in Northflank CLI at {program}",
            hint="pass the folder tests/northflank_cli_standin of a sindri-jupyter "
            "checkout as cli_standin")
    fake = FakeNorthflank(tokens=(REHEARSAL_NORTHFLANK_TOKEN,),
                          authorize=lambda key: sshd.authorize(image_key_line(key)))
    fake.start()
    log.info("fake Northflank at %s, CLI stand-in %s", fake.url, program)
    env = {"NORTHFLANK_API_TOKEN": REHEARSAL_NORTHFLANK_TOKEN,
           "SINDRI_NORTHFLANK_API_URL": fake.url,
           "PATH": f"{program.parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "NF_STANDIN_SSH_HOST": sshd.host, "NF_STANDIN_SSH_PORT": str(sshd.port)}
    return Rehearsal("northflank", fake.url, env, [fake.stop, sshd.stop])


def image_key_line(public_key: str) -> str:
    """An authorized_keys line whose sessions find this interpreter's python3.

    The forced command runs what the client asked for, with ``PATH`` led by
    the folder of ``sys.executable`` (a venv with ipykernel).
    """
    folder = Path(sys.executable).parent
    command = f'PATH={folder}:$PATH; export PATH; eval \\"$SSH_ORIGINAL_COMMAND\\"'
    return f'command="{command}" {public_key.strip()}'
