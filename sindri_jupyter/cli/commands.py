"""What each ``sindri`` subcommand does, on top of the core.

Handlers take the parsed arguments and an ``Out``; they return an exit status
and raise ``SindriError`` for failures (the caller prints it once).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sindri_jupyter.cli.render import Out, duration, money
from sindri_jupyter.core import sync
from sindri_jupyter.errors import ConfigError, SindriError, UsageError

HANDLERS: dict[str, Any] = {}


def handler(name: str):
    def register(func):
        HANDLERS[name] = func
        return func
    return register


def engine():
    from sindri_jupyter.core.engine import Engine

    return Engine()


class CellFailed(SindriError):
    """Remote code raised; its traceback was already shown."""


# -- config -----------------------------------------------------------------


def resolve_config(args: argparse.Namespace):
    """The config of a deploy: the file, then the flags on top of it."""
    from pydantic import ValidationError

    from sindri_jupyter.config import load
    from sindri_jupyter.config.models import SindriConfig

    path = args.file or ("sindri.yaml" if Path("sindri.yaml").exists() else None)
    if path:
        data = load(path).model_dump(exclude_unset=True)
    elif args.provider and args.name:
        data = {"name": args.name, "deployment": {"provider": args.provider}}
    else:
        raise UsageError("no sindri.yaml in this folder",
                         hint="pass -f FILE, or --provider local --name NAME")
    deployment = data.setdefault("deployment", {})
    if args.provider:
        deployment["provider"] = args.provider
    if args.name:
        data["name"] = args.name
    if args.gpu:
        gpu = deployment.setdefault("resources", {}).setdefault("gpu", {"count": 1})
        gpu["type"] = args.gpu
        # A flag beats the file, provider sections included.
        sections = data.get("providers") or {}
        for section, key in (("runpod", "gpu_type_id"), ("northflank", "gpu_type")):
            if key in (sections.get(section) or {}):
                sections[section][key] = args.gpu
    try:
        config = SindriConfig.model_validate(data)
    except ValidationError as exc:
        where = f"{path} with flags" if path else "flags"
        raise ConfigError([f"{where}: {'.'.join(map(str, e['loc']))}: "
                           f"{e['msg'].removeprefix('Value error, ')}"
                           for e in exc.errors()],
                          hint="check --name, --provider and --gpu") from None
    from sindri_jupyter.core.provider import available

    if config.provider not in available():
        raise UsageError(f"unknown provider {config.provider!r}",
                         hint="choose one of: " + ", ".join(available()))
    return config, (str(Path(path).resolve()) if path else None)


@handler("config")
def cmd_config(args, out: Out) -> int:
    from sindri_jupyter.config import json_schema, load
    from sindri_jupyter.config.report import section_notes

    if args.config_command == "schema":
        out.json(json_schema())
        return 0
    path = args.file or args.path or "sindri.yaml"
    config = load(path)
    from sindri_jupyter.core.provider import load as provider_class

    check = getattr(provider_class(config.provider), "validate", None)
    if check is not None:
        try:
            check(config)  # the provider's own offline checks (ports, names, image)
        except ConfigError as exc:
            raise ConfigError([f"{path}: {p}" for p in exc.problems],
                              hint=exc.hint) from None
    out.print(f"{path}: valid ({config.name} on {config.provider})")
    for note in section_notes(config):
        out.print(f"  {note.key}: {note.treatment}: {note.detail}")
    return 0


# -- deploy and lifecycle ------------------------------------------------------


@handler("deploy")
def cmd_deploy(args, out: Out) -> int:
    config, path = resolve_config(args)
    eng = engine()
    plan = sync.run(eng.plan(config))
    price = "unknown" if plan.price_per_hour is None else f"${plan.price_per_hour:.2f}/h"
    gpu = f"{plan.gpu_count}x {plan.gpu}" if plan.gpu else "none"
    out.print(f"plan: {config.name} on {plan.provider}: {plan.summary}")
    out.print(f"      GPU {gpu}, {price}, availability {plan.availability or 'unknown'}")
    for note in plan.notes:
        out.print(f"      {note.key}: {note.treatment}: {note.detail}")
    if args.dry_run:
        out.print("dry run: nothing was created")
        return 0
    try:
        record = sync.run(eng.deploy(config, config_path=path, wait=not args.no_wait,
                                     on_event=out.event, plan=plan))
    except KeyboardInterrupt:
        if eng.store.find(config.name) is not None:
            out.error(f"interrupted: {config.name} is recorded and may still be starting"
                      f" (and billing at {price}): `sindri deploy` again resumes it, "
                      f"`sindri destroy {config.name}` removes it")
        raise
    if record.phase == "ready":
        out.print(f"{config.name} is ready: `sindri run {config.name} -- CODE`")
    else:
        out.print(f"{config.name} is {record.phase}; `sindri status {config.name}` follows it")
    return 0


@handler("stop")
def cmd_stop(args, out: Out) -> int:
    record = sync.run(engine().stop(args.name, on_event=out.event))
    out.print(f"{record.name} is stopped; `sindri start {record.name}` resumes it")
    return 0


@handler("start")
def cmd_start(args, out: Out) -> int:
    record = sync.run(engine().start(args.name, on_event=out.event))
    out.print(f"{record.name} is {record.phase}")
    return 0


@handler("destroy")
def cmd_destroy(args, out: Out) -> int:
    eng = engine()
    record = eng.store.get(args.name)
    if not args.yes and not out.confirm(
            f"Destroy {record.name} on {record.provider} ({record.resource_id or 'no id'})?"):
        raise UsageError(f"not destroying {args.name} without confirmation",
                         hint=f"answer y at the prompt, or run `sindri destroy "
                         f"{args.name} --yes`")
    sync.run(eng.destroy(args.name, on_event=out.event))
    out.print(f"{args.name} is destroyed and confirmed gone")
    return 0


# -- status -------------------------------------------------------------------


@handler("status")
def cmd_status(args, out: Out) -> int:
    eng = engine()
    statuses = [sync.run(eng.status(args.name))] if args.name else sync.run(eng.status_all())
    rows = [status_row(s) for s in statuses]
    orphans = []
    if args.all:
        from sindri_jupyter.cli.doctor import credentialed_providers

        names = sorted({s.record.provider for s in statuses} | {"local"}
                       | set(credentialed_providers()))
        orphans = sync.run(eng.orphans(names))
    if args.json:
        out.json({"environments": rows, "unrecorded": [
            {"provider": h.provider, "name": h.name, "resource_id": h.resource_id}
            for h in orphans]})
        return 0
    if not rows:
        out.print("no environments recorded; `sindri deploy` creates one")
    else:
        columns = ["name", "provider", "state", "endpoint", "$/h", "uptime", "cost", "note"]
        out.table(columns, [[r[c if c != "$/h" else "price_per_hour_text"]
                             for c in columns] for r in rows])
    for provider, why in eng.unlisted.items():
        out.print(f"could not list {provider}'s resources: {why}")
    for h in orphans:
        fix = ("`sindri doctor --fix` removes it" if h.provider in ("local", "ssh")
               else "delete it in the provider's console, or it keeps billing")
        out.print(f"not recorded: {h.provider} {h.name} {h.resource_id} ({fix})")
    return 0


def status_row(status) -> dict[str, Any]:
    record, observed = status.record, status.observed
    endpoint = record.endpoint or {}
    where = ("this machine" if endpoint.get("kind") == "local"
             else f"{endpoint.get('user')}@{endpoint.get('host')}:{endpoint.get('port')}"
             if endpoint else "-")
    state = observed.state.value if observed else record.state
    if observed and observed.raw_state and observed.state.value == "UNKNOWN":
        state = f"UNKNOWN ({observed.raw_state})"
    note = status.error or (observed.message if observed else "") or record.phase
    return {"name": record.name, "provider": record.provider, "state": state,
            "phase": record.phase, "endpoint": where,
            "price_per_hour": record.price_per_hour,
            "price_per_hour_text": money(record.price_per_hour),
            "uptime_seconds": record.uptime(), "uptime": duration(record.uptime()),
            "accrued_usd": round(record.accrued(), 4), "cost": money(record.accrued()),
            "resource_id": record.resource_id, "note": note}


# -- run ------------------------------------------------------------------------


@handler("run")
def cmd_run(args, out: Out) -> int:
    code = code_of(args)
    from sindri_jupyter.remote.kernel import TerminalRelay

    result = sync.run(execute_code(args.name, code, TerminalRelay(out.out, out.err)))
    if result.interrupted:
        out.error("interrupted: the remote kernel stopped the cell; its state is kept")
        return 1
    if not result.ok:
        raise CellFailed(f"the code raised {result.ename} on {args.name}")
    return 0


def code_of(args) -> str:
    if args.code_file and args.code:
        raise UsageError("give the code either after -- or with --file, not both")
    if args.code_file:
        try:
            return Path(args.code_file).read_text()
        except OSError as exc:
            raise UsageError(f"cannot read {args.code_file}: {exc.strerror}",
                             hint="--file takes a Python file") from None
    if args.code:
        return " ".join(args.code)
    if not sys.stdin.isatty():
        return sys.stdin.read()
    raise UsageError("no code to run",
                     hint=f"sindri run {args.name} -- 'print(1 + 1)'  or  --file script.py")


async def execute_code(name: str, code: str, relay):
    """Run code on the environment's kernel through the process's open session."""
    from sindri_jupyter.remote import sessions

    return await (await sessions.session(name)).execute(code, relay)


# -- files, shell ------------------------------------------------------------------


@handler("push")
def cmd_push(args, out: Out) -> int:
    from sindri_jupyter.remote import files

    copied = sync.run(files.push(args.name, args.path, args.remote, out.print))
    out.print(f"pushed {copied.copied} file(s), {copied.skipped} unchanged")
    return 0


@handler("pull")
def cmd_pull(args, out: Out) -> int:
    from sindri_jupyter.remote import files

    copied = sync.run(files.pull(args.name, args.remote, args.path, out.print))
    out.print(f"pulled {copied.copied} file(s), {copied.skipped} unchanged")
    return 0


@handler("connect")
def cmd_connect(args, out: Out) -> int:
    from sindri_jupyter.remote import shell

    return shell.connect(args.name)


@handler("ssh-config")
def cmd_ssh_config(args, out: Out) -> int:
    from sindri_jupyter.remote import shell

    path = shell.write_ssh_config(args.name, accept_new=args.accept_new_host_key)
    out.print(f"wrote Host sindri-{args.name} to {path}; try `ssh sindri-{args.name}`")
    return 0


@handler("attach")
def cmd_attach(args, out: Out) -> int:
    from sindri_jupyter.remote import kernelspec

    path = kernelspec.install(args.name)
    out.print(f"installed kernelspec {path.name} ({kernelspec.display_name(args.name)}); "
              "choose it in JupyterLab's kernel menu")
    return 0


@handler("workshop")
def cmd_workshop(args, out: Out) -> int:
    from sindri_jupyter.frontends import workshop_cmd

    if args.action == "deploy":
        args.wait = True  # a command line waits; only the notebook returns at once
    workshop_cmd.ACTIONS[args.action](args)
    return 0


# -- gpus and doctor ---------------------------------------------------------------


@handler("gpus")
def cmd_gpus(args, out: Out) -> int:
    from sindri_jupyter.cli import doctor

    rows = sync.run(doctor.gpus(args.provider, args.min_vram))
    if args.json:
        out.json(rows)
        return 0
    if not rows:
        out.print("no GPUs found" + (f" on {args.provider}" if args.provider else
                                     " on this machine or a cloud with credentials set "
                                     "(RUNPOD_API_KEY, NORTHFLANK_API_TOKEN)"))
        return 0
    columns = ["provider", "id", "name", "vram_gb", "price_per_hour",
               "community_price_per_hour", "availability"]
    out.table(columns, [[r.get(c, "") for c in columns] for r in rows])
    return 0


@handler("doctor")
def cmd_doctor(args, out: Out) -> int:
    from sindri_jupyter.cli import doctor

    checks = sync.run(doctor.run(args.provider, fix=args.fix))
    if args.json:
        out.json([c.__dict__ for c in checks])
    else:
        for c in checks:
            mark = "ok  " if c.ok else "FAIL"
            out.print(f"{mark} {c.name}: {c.detail}")
            if not c.ok and c.fix:
                out.print(f"     fix: {c.fix}")
    return 0 if all(c.ok for c in checks) else 1

