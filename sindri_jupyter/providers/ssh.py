"""The ``ssh`` provider: an existing host you can already log in to.

Nothing is created or billed: deploy records the host, status checks that it
answers SSH, destroy stops the kernel and forgets the host. Your own
``~/.ssh/config`` entries and agent work, as with plain ``ssh``.
"""

from __future__ import annotations

import asyncio
import os
import socket

from sindri_jupyter.config.models import SindriConfig
from sindri_jupyter.config.report import section_notes
from sindri_jupyter.core import paths
from sindri_jupyter.core.types import (
    Capabilities, Check, Endpoint, Handle, Note, Observed, Plan, State,
)
from sindri_jupyter.errors import ConfigError

_RECORDED, _STOPPED = "ssh-host", "stopped"
PROBE_TIMEOUT_S = 10.0


class SSHProvider:
    name = "ssh"
    capabilities = Capabilities(pause=True)
    needs_ssh_key = False
    # An existing host either answers now or is down: do not wait 20 minutes.
    provision_timeout = 60.0

    @staticmethod
    def _section(config: SindriConfig):
        section = config.section("ssh")
        if section is None:
            raise ConfigError(["providers.ssh: this section is required for the ssh "
                               "provider"], hint="add providers: {ssh: {host: HOST}}")
        return section

    @classmethod
    def validate(cls, config: SindriConfig) -> None:
        """The checks that need no connection (``sindri config validate``)."""
        section = cls._section(config)
        if section.identity_file and not os.path.exists(
                os.path.expanduser(section.identity_file)):
            raise ConfigError([f"providers.ssh.identity_file: no such file "
                               f"{section.identity_file}"],
                              hint="point it at your private key, or leave it out to use "
                              "~/.ssh/config and the agent")

    async def plan(self, config: SindriConfig) -> Plan:
        self.validate(config)
        section = self._section(config)
        notes = section_notes(config)
        if config.deployment.image:
            notes.append(Note("deployment.image", "not applicable",
                              "the ssh provider uses the host as it is"))
        if config.deployment.resources.gpu:
            notes.append(Note("deployment.resources.gpu", "not applicable",
                              "the host's GPUs are what you get"))
        where = f"{section.user + '@' if section.user else ''}{section.host}:{section.port}"
        return Plan(provider="ssh", name=config.name, price_per_hour=0.0,
                    summary=f"existing host {where}", availability="your host",
                    notes=tuple(notes))

    async def create(self, config: SindriConfig, handle: Handle) -> Handle:
        section = self._section(config)
        endpoint = {"host": section.host, "port": section.port, "user": section.user,
                    "identity_file": section.identity_file}
        (paths.env_dir(handle.name) / _RECORDED).write_text(section.host)
        (paths.env_dir(handle.name) / _STOPPED).unlink(missing_ok=True)
        data = dict(handle.data, python=section.python, ssh=endpoint, cwd="~")
        resource = f"{section.host}:{section.port}"
        return Handle(handle.provider, handle.name, handle.marker, resource, data)

    async def find(self, handle: Handle) -> Handle | None:
        return handle if (paths.env_dir(handle.name) / _RECORDED).exists() else None

    async def get(self, handle: Handle) -> Observed:
        folder = paths.home() / "envs" / handle.name
        if not (folder / _RECORDED).exists():
            return Observed(State.GONE, raw_state="forgotten")
        if (folder / _STOPPED).exists():
            return Observed(State.STOPPED, raw_state=_STOPPED, price_per_hour=0.0)
        ep = handle.data.get("ssh", {})
        answered, detail = await _answers_ssh(ep.get("host", ""), ep.get("port") or 22)
        if not answered:
            return Observed(State.UNKNOWN, raw_state="unreachable", message=detail)
        endpoint = Endpoint(kind="ssh", host=ep["host"], port=ep.get("port") or 22,
                            user=ep.get("user") or "",
                            extra={"identity_file": ep.get("identity_file"),
                                   "use_user_config": True})
        return Observed(State.RUNNING, raw_state="answers", endpoint=endpoint,
                        price_per_hour=0.0)

    async def start(self, handle: Handle) -> None:
        (paths.env_dir(handle.name) / _STOPPED).unlink(missing_ok=True)

    async def stop(self, handle: Handle) -> None:
        (paths.env_dir(handle.name) / _STOPPED).touch()

    async def destroy(self, handle: Handle) -> None:
        (paths.env_dir(handle.name) / _RECORDED).unlink(missing_ok=True)

    async def list_owned(self) -> list[Handle]:
        return []

    async def check(self) -> list[Check]:
        import shutil

        found = shutil.which("ssh")
        return [Check("ssh client", bool(found), found or "not found",
                      None if found else "apt-get install openssh-client")]

    async def aclose(self) -> None:
        return None


async def _answers_ssh(host: str, port: int) -> tuple[bool, str]:
    """Does something at host:port speak SSH? (reads the version banner)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                PROBE_TIMEOUT_S)
    except socket.gaierror:
        # Perhaps a Host alias of ~/.ssh/config: the SSH handshake will tell.
        return True, f"{host} is not a DNS name; trusting ~/.ssh/config"
    except (OSError, asyncio.TimeoutError) as exc:
        return False, f"{host}:{port} does not answer: {exc or 'timeout'}"
    try:
        banner = await asyncio.wait_for(reader.readline(), PROBE_TIMEOUT_S)
    except (OSError, asyncio.TimeoutError):
        banner = b""
    finally:
        writer.close()
    if not banner.startswith(b"SSH-"):
        return False, f"{host}:{port} answers, but not with SSH"
    return True, banner.decode(errors="replace").strip()
