"""The lifecycle engine: the one place that plans, records, creates and waits.

deploy:  plan (price shown) -> record the intent -> create (never retried
         blindly: a lost answer is resolved with ``find``) -> wait for RUNNING
         and an endpoint -> start the environment kernel -> it answers -> ready.
stop / start / destroy wait for the state they asked for, each with a deadline.
Providers are thin adapters; everything time- and money-related lives here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sindri_jupyter.config.models import SindriConfig
from sindri_jupyter.core import limits
from sindri_jupyter.core import provider as registry
from sindri_jupyter.core.state import Record, Store
from sindri_jupyter.core.types import Endpoint, Handle, Observed, Plan, State
from sindri_jupyter.core.waiting import Backoff, Event, Listener, Timeouts, poll
from sindri_jupyter.errors import (
    NotFoundError,
    OutcomeUnknownError,
    ProviderAPIError,
    ProviderError,
    SindriError,
    SSHError,
    StateError,
    WaitTimeout,
)

log = logging.getLogger(__name__)

# While a state does not change, say so this often (seconds).
STILL_EVERY_S = 30.0

# API errors that prove the create did not happen: no lookup needed.
_DEFINITE = {400, 401, 402, 403, 404, 409, 422}


@dataclass
class Status:
    record: Record
    observed: Observed | None
    error: str | None = None


class Engine:
    """Drives providers for the front-ends. One per process is enough."""

    def __init__(self, store: Store | None = None, *, timeouts: Timeouts | None = None,
                 providers: dict[str, Any] | None = None,
                 sleep: Callable[[float], Any] = asyncio.sleep):
        self.store = store or Store.default()
        self.timeouts = timeouts or Timeouts()
        self._providers: dict[str, Any] = dict(providers or {})
        self._sleep = sleep
        self.unlisted: dict[str, str] = {}  # provider -> why orphans() could not list

    def provider(self, name: str):
        if name not in self._providers:
            self._providers[name] = registry.load(name)()
        return self._providers[name]

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()

    # -- deploy ----------------------------------------------------------------

    async def plan(self, config: SindriConfig) -> Plan:
        plan = await self.provider(config.provider).plan(config)
        extra = tuple(limits.notes(config, plan.price_per_hour))
        known = {note.key for note in plan.notes}
        extra = tuple(n for n in extra if n.key not in known)
        return dataclasses.replace(plan, notes=plan.notes + extra)

    async def deploy(self, config: SindriConfig, *, config_path: str | None = None,
                     wait: bool = True, on_event: Listener | None = None,
                     plan: Plan | None = None) -> Record:
        emit = _Emitter(config.name, self.store, on_event)
        existing = self.store.find(config.name)
        if existing is not None:
            return await self._redeploy(existing, config, emit, on_event)
        provider = self.provider(config.provider)
        plan = plan or await self.plan(config)
        emit("plan", _plan_line(plan), price=plan.price_per_hour)
        data = dict(self._key_data(provider, config.name), **plan.data,
                    limits=limits.from_config(config),
                    config_fingerprint=fingerprint(config))
        handle = Handle(config.provider, config.name,
                        marker=f"sindri-{secrets.token_hex(6)}", data=data)
        self.store.record_intent(config.name, config.provider, handle.marker,
                                 config_path=config_path,
                                 price_per_hour=plan.price_per_hour,
                                 handle_data=handle.data)
        self.store.update(config.name, phase="creating")
        handle = await self._create(provider, config, handle, emit)
        self.store.update(config.name, phase="waiting", resource_id=handle.resource_id,
                          handle_data=handle.data)
        emit("create", f"created {handle.resource_id or handle.name}")
        if not wait:
            return self.store.get(config.name)
        return await self.wait_ready(config.name, on_event=on_event, config=config,
                                     emit=emit)

    async def _redeploy(self, record: Record, config: SindriConfig, emit,
                        on_event: Listener | None) -> Record:
        """Deploying a name that exists reuses it, as long as it is the same kind."""
        if record.phase in ("intent", "creating") and record.provider == config.provider:
            return await self._after_unknown_create(record, config, emit, on_event)
        reusable = {"ready", "waiting", "connecting", "stopped", "failed"}
        if record.provider != config.provider or record.phase not in reusable:
            raise StateError(
                f"an environment named {config.name!r} is already recorded "
                f"({record.provider}, {record.phase})",
                hint=f"`sindri destroy {config.name}` first, or choose another --name",
            )
        emit("plan", f"{config.name} exists on {record.provider}; reusing it")
        if record.handle_data.get("config_fingerprint") not in (None, fingerprint(config)):
            emit("plan", "the config changed since this environment was deployed; it "
                 f"keeps its old settings (`sindri destroy {config.name}` and deploy "
                 "again to apply them)")
        if record.phase == "stopped":
            return await self.start(config.name, on_event=on_event, config=config)
        return await self.wait_ready(config.name, on_event=on_event, config=config)

    async def _after_unknown_create(self, record: Record, config: SindriConfig, emit,
                                    on_event: Listener | None) -> Record:
        """An earlier create's outcome was unknown: adopt what it made, or start over."""
        provider = self.provider(record.provider)
        found = await provider.find(to_handle(record))
        if found is not None:
            emit("create", f"found what the earlier create made: {found.resource_id}")
            self.store.update(record.name, phase="waiting", resource_id=found.resource_id,
                              handle_data=found.data)
            return await self.wait_ready(record.name, on_event=on_event, config=config)
        emit("create", "the earlier create left nothing that can be found; creating again")
        self.store.forget(record.name)
        return await self.deploy(config, config_path=record.config_path,
                                 on_event=on_event)

    @staticmethod
    def _key_data(provider: Any, name: str) -> dict[str, Any]:
        if not getattr(provider, "needs_ssh_key", False):
            return {}
        from sindri_jupyter.remote import hosts

        return {"public_key": hosts.public_key(name)}

    async def _create(self, provider, config, handle: Handle, emit) -> Handle:
        try:
            return await provider.create(config, handle)
        except OutcomeUnknownError as exc:
            lost: SindriError = exc
        except ProviderAPIError as exc:
            if exc.status in _DEFINITE:
                self._create_failed(config.name, exc)
                raise
            lost = exc
        except SindriError as exc:
            # Refused before anything was sent (a config or name check).
            self._create_failed(config.name, exc)
            raise
        # The answer was lost, the pod may exist: look before anything else.
        emit("create", "the create's answer was lost; looking the resource up")
        found = await provider.find(handle)
        if found is None:
            # It may still land (a slow answer): keep the intent, so `status`
            # shows it and `destroy` finds the resource by its marker.
            self.store.add_event(config.name, "failed",
                                 f"create outcome unknown: {lost.message}")
            raise lost
        emit("create", f"found the resource the lost answer was about: {found.resource_id}")
        return found

    def _create_failed(self, name: str, exc: SindriError) -> None:
        self.store.add_event(name, "failed", f"create failed: {exc.message}")
        self.store.forget(name)

    async def wait_ready(self, name: str, *, on_event: Listener | None = None,
                         config: SindriConfig | None = None, emit=None) -> Record:
        """Wait until running, reachable, and the kernel answers."""
        emit = emit or _Emitter(name, self.store, on_event)
        record = self.store.get(name)
        provider = self.provider(record.provider)
        budget = min(self.timeouts.provision,
                     getattr(provider, "provision_timeout", self.timeouts.provision))
        observed = await self._wait_state(provider, record, {State.RUNNING}, emit,
                                          budget, needs_endpoint=True)
        self.store.update(name, phase="connecting")
        try:
            facts = await self._start_kernel(record, observed.endpoint, config, emit)
        except SindriError as exc:
            self._failed_late(record, exc)
            raise
        data = dict(self.store.get(name).handle_data, kernel=facts)
        record = self.store.update(name, phase="ready", handle_data=data)
        emit("ready", f"ready: kernel pid {facts['pid']}, Python {facts['python']}",
             state="RUNNING")
        return record

    def _failed_late(self, record: Record, exc: SindriError) -> None:
        """The machine runs but the kernel did not answer: say it still bills."""
        self.store.update(record.name, phase="failed")
        self.store.add_event(record.name, "failed", f"not ready: {exc.message}")
        price = record.price_per_hour
        bills = f" and bills ${price:.2f}/h" if price else ""
        exc.hint = (f"{exc.hint + '; ' if exc.hint else ''}{record.name} still runs{bills}: "
                    f"fix it and `sindri deploy` again to retry, or `sindri destroy "
                    f"{record.name}`")

    async def _wait_state(self, provider, record: Record, wanted: set[State], emit,
                          budget: float, *, needs_endpoint: bool = False) -> Observed:
        handle = to_handle(record)
        last: list[str] = [""]
        backoff = Backoff(first=getattr(provider, "first_poll", 1.0),
                          cap=getattr(provider, "max_poll", 10.0))

        async def probe() -> Observed | None:
            observed = await provider.get(handle)
            self._observe(record.name, observed, emit, last)
            if observed.state in wanted and (observed.endpoint or not needs_endpoint):
                return observed
            if observed.state in (State.FAILED, State.GONE) and observed.state not in wanted:
                raise ProviderError(
                    f"{record.name} is {observed.state.value}: "
                    f"{observed.message or observed.raw_state}",
                    provider=record.provider,
                    hint=f"see `sindri status {record.name}`; "
                    f"`sindri destroy {record.name}` removes it",
                )
            return None

        want = "/".join(s.value for s in wanted)
        interval = getattr(provider, "poll_interval", None)
        return await poll(probe, phase="provision", deadline=time.monotonic() + budget,
                          backoff=backoff, what=f"{record.name} reaching {want}",
                          pace=(lambda: interval(handle)) if interval else None,
                          hint=f"it is still recorded: `sindri status {record.name}` "
                          f"shows it, `sindri destroy {record.name}` removes it",
                          sleep=self._sleep)

    def _observe(self, name: str, observed: Observed, emit, last: list) -> None:
        """Record what was seen; tell the user on a change, and every 30 s anyway."""
        label = observed.raw_state or observed.state.value
        quiet = time.monotonic() - (last[1] if len(last) > 1 else 0.0)
        if label != last[0] or quiet >= STILL_EVERY_S:
            still = "still " if label == last[0] else ""
            last[:] = [label, time.monotonic()]
            extra = f": {observed.message}" if observed.message else ""
            emit(_phase_of(observed.state),
                 f"{still}{observed.state.value} ({label}){extra}",
                 state=observed.state.value)
        fields: dict[str, Any] = {"state": observed.state.value,
                                  "raw_state": observed.raw_state}
        if observed.endpoint is not None:
            fields["endpoint"] = endpoint_dict(observed.endpoint)
        if observed.price_per_hour is not None:
            fields["price_per_hour"] = observed.price_per_hour
        self.store.update(name, **fields)

    async def _start_kernel(self, record: Record, endpoint: Endpoint | None,
                            config: SindriConfig | None, emit) -> dict[str, Any]:
        from sindri_jupyter.remote import hosts

        kernel = hosts.environment_kernel(self.store.get(record.name), config)
        try:
            emit("ssh" if endpoint and endpoint.kind == "ssh" else "kernel",
                 "connecting to the host")
            facts = await self._first_start(kernel, emit)
            if facts.get("installed_ipykernel_into"):
                emit("kernel", "the host's Python had no ipykernel: installed it into "
                     f"{facts['installed_ipykernel_into']}")
            started = "found running" if facts.get("reused") else "started"
            emit("kernel", f"kernel {started} (pid {facts['pid']}, Python "
                 f"{facts['python']}); waiting for its answer")
            await kernel.wait_answers(self.timeouts.kernel)
        finally:
            await kernel.host.aclose()
        return facts

    async def _first_start(self, kernel, emit) -> dict[str, Any]:
        """Start the kernel; a host whose sshd is not up yet is tried again."""
        last: list[SSHError] = []

        async def attempt() -> dict[str, Any] | None:
            try:
                return await asyncio.wait_for(kernel.start(self.timeouts.kernel),
                                              self.timeouts.ssh + self.timeouts.kernel)
            except SSHError as exc:
                if exc.step != "connect":
                    raise
                if not last:
                    emit("ssh", f"waiting for SSH to answer: {exc.message}")
                last[:] = [exc]
                await kernel.host.aclose()
                return None

        try:
            return await poll(attempt, phase="ssh",
                              deadline=time.monotonic() + self.timeouts.ssh,
                              backoff=Backoff(first=1.0, cap=5.0),
                              what="an SSH connection", sleep=self._sleep)
        except WaitTimeout:
            raise last[-1] if last else WaitTimeout(
                "no SSH connection", phase="ssh") from None

    # -- status ------------------------------------------------------------------

    async def status(self, name: str) -> Status:
        record = self.store.get(name)
        if record.phase == "intent" or (not record.resource_id and record.phase == "creating"):
            return Status(record, None, "create was interrupted; `sindri destroy` cleans up")
        try:
            observed = await self.provider(record.provider).get(to_handle(record))
        except ProviderError as exc:
            return Status(record, None, str(exc))
        self._observe(name, observed, lambda *a, **k: None, [record.raw_state])
        record = self.store.get(name)
        reason = limits.breach(record) if observed.state is State.RUNNING else None
        if reason is not None:
            return await self._enforce(record, reason)
        return Status(record, observed, self._note(record))

    def _note(self, record: Record) -> str | None:
        """What the state alone does not say: a stop's reason, a kernel that ended."""
        if record.phase == "stopped":
            limit = [e for e in self.store.events(record.name) if e["phase"] == "limit"]
            return f"stopped: {limit[-1]['message'].removeprefix('stopping: ')}" \
                if limit else None
        pid = (record.handle_data.get("kernel") or {}).get("pid")
        local = (record.endpoint or {}).get("kind") == "local"
        if record.phase == "ready" and local and pid and not _pid_alive(pid):
            return "its kernel has ended; the next run starts a fresh one"
        return None

    async def _enforce(self, record: Record, reason: str) -> Status:
        """Stop an environment past its budget or lifetime, and say why."""
        self.store.add_event(record.name, "limit", f"stopping: {reason}")
        provider = self.provider(record.provider)
        if provider.capabilities.pause:
            await self.stop(record.name)
        else:
            await self.destroy(record.name)
            return Status(record, None, f"destroyed: {reason}")
        return Status(self.store.get(record.name), None, f"stopped: {reason}")

    async def status_all(self) -> list[Status]:
        records = self.store.all()
        return list(await asyncio.gather(*(self.status(r.name) for r in records)))

    async def orphans(self, providers: list[str]) -> list[Handle]:
        """Resources a provider lists as ours that the store does not know."""
        known = {(r.provider, r.resource_id) for r in self.store.all()}
        found: list[Handle] = []
        self.unlisted = {}
        for name in providers:
            try:
                owned = await self.provider(name).list_owned()
            except SindriError as exc:
                self.unlisted[name] = exc.message
                continue
            found += [h for h in owned if (name, h.resource_id) not in known]
        return found

    # -- stop / start / destroy ---------------------------------------------------

    async def stop(self, name: str, *, on_event: Listener | None = None) -> Record:
        emit = _Emitter(name, self.store, on_event)
        record = self.store.get(name)
        await self._stop_kernel(record, remove=False)
        provider = self.provider(record.provider)
        await provider.stop(to_handle(record))
        emit("stop", "stop requested")
        await self._wait_state(provider, record, {State.STOPPED}, emit, self.timeouts.stop)
        return self.store.update(name, phase="stopped")

    async def start(self, name: str, *, on_event: Listener | None = None,
                    config: SindriConfig | None = None) -> Record:
        emit = _Emitter(name, self.store, on_event)
        record = self.store.get(name)
        await self.provider(record.provider).start(to_handle(record))
        emit("start", "start requested")
        self.store.update(name, phase="waiting")
        return await self.wait_ready(name, on_event=on_event, config=config)

    async def destroy(self, name: str, *, on_event: Listener | None = None) -> None:
        emit = _Emitter(name, self.store, on_event)
        record = self.store.get(name)
        provider = self.provider(record.provider)
        handle = to_handle(record)
        if not handle.resource_id:
            handle = await provider.find(handle) or handle
        if handle.resource_id:
            await self._stop_kernel(record, remove=True)
            await provider.destroy(handle)
            emit("destroy", "delete requested; confirming it is gone")
            await self._wait_state(provider, _with(record, handle), {State.GONE}, emit,
                                   self.timeouts.stop)
        emit("destroy", "gone")
        self.store.forget(name)
        _remove_local_traces(name)

    async def _stop_kernel(self, record: Record, *, remove: bool) -> None:
        """Stop the environment kernel; an unreachable host is noted, not fatal."""
        if not record.endpoint or record.state != State.RUNNING.value:
            return
        from sindri_jupyter.remote import hosts

        kernel = hosts.environment_kernel(record, None, with_env=False)
        try:
            await kernel.stop(self.timeouts.kernel, remove=remove)
        except SindriError as exc:
            self.store.add_event(record.name, "kernel", f"kernel not stopped: {exc.message}")
        finally:
            await kernel.host.aclose()


class _Emitter:
    """Record an event and hand it to the front-end's listener."""

    def __init__(self, name: str, store: Store, listener: Listener | None):
        self.name, self.store, self.listener = name, store, listener
        self.start = time.monotonic()

    def __call__(self, phase: str, message: str, *, state: str | None = None,
                 price: float | None = None) -> None:
        elapsed = time.monotonic() - self.start
        try:
            self.store.add_event(self.name, phase, message, elapsed)
        except NotFoundError:
            pass
        log.info("%s: %s: %s", self.name, phase, message)
        if self.listener is not None:
            self.listener(Event(self.name, phase, message, elapsed, state, price))


def _pid_alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def fingerprint(config: SindriConfig) -> str:
    """A digest of the config's settings; env values are left out (secrets)."""
    import hashlib

    data = config.model_dump(mode="json")
    data["deployment"]["env"] = sorted(data["deployment"]["env"])
    text = json.dumps(data, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _remove_local_traces(name: str) -> None:
    """Keys, host-key pin, kernelspec and ssh config entry of a destroyed one."""
    import shutil

    from sindri_jupyter.core import paths
    from sindri_jupyter.remote import kernelspec

    kernelspec.remove(name)
    shutil.rmtree(paths.home() / "envs" / name, ignore_errors=True)
    (paths.home() / "ssh" / f"{name}.conf").unlink(missing_ok=True)


def _phase_of(state: State) -> str:
    return {State.PENDING: "create", State.PROVISIONING: "provisioning",
            State.STARTING: "image"}.get(state, "provisioning")


def _plan_line(plan: Plan) -> str:
    price = "price unknown" if plan.price_per_hour is None else f"${plan.price_per_hour:.2f}/h"
    gpu = f"{plan.gpu_count}x {plan.gpu}" if plan.gpu else "no GPU"
    return f"{plan.provider}: {plan.summary}; {gpu}; {price}"


def to_handle(record: Record) -> Handle:
    return Handle(record.provider, record.name, record.marker, record.resource_id,
                  dict(record.handle_data))


def _with(record: Record, handle: Handle) -> Record:
    record.resource_id = handle.resource_id
    return record


def endpoint_dict(endpoint: Endpoint) -> dict[str, Any]:
    return {"kind": endpoint.kind, "host": endpoint.host, "port": endpoint.port,
            "user": endpoint.user, "extra": dict(endpoint.extra)}
