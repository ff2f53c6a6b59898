"""``%sindri workshop ...``: parse and run the workshop subcommands.

The CLI parser does not have ``workshop`` yet, so its arguments are parsed
here with the same conventions (``UsageError`` for misuse, ``--help`` on every
subcommand). ``deploy`` returns at once with a live table unless ``--wait``.

    %sindri workshop deploy roster.csv -f base.yaml --budget 5 --expiry-hours 3
    %sindri workshop status            # who is idle, cost against budget
    %sindri workshop handout           # how each participant connects
    %sindri workshop destroy --yes
"""

from __future__ import annotations

import argparse
from typing import Any

from sindri_jupyter.errors import SindriError, UsageError
from sindri_jupyter.frontends.workshop import DEFAULT_NAME, IDLE_MINUTES, Workshop


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(message, hint=f"`{self.prog} --help` lists the options")

    def exit(self, status: int = 0, message: str | None = None):
        if message:
            raise UsageError(message.strip())
        raise _HelpShown()


class _HelpShown(Exception):
    """--help was printed."""


def build(prog: str = "%sindri workshop") -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="One environment per participant.")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser,
                                required=True)
    p = sub.add_parser("deploy", help="deploy an environment per roster entry")
    p.add_argument("roster", help="CSV with a `name` column, or a YAML list")
    p.add_argument("-f", "--file", required=True, help="base sindri.yaml for everyone")
    p.add_argument("--budget", type=float, metavar="USD",
                   help="per-person cap on accrued cost, in US dollars")
    p.add_argument("--expiry-hours", type=float, metavar="H",
                   help="per-person lifetime in hours, from now")
    p.add_argument("--wait", action="store_true", help="block until all are ready")
    for action, text in (("status", "state, cost, expiry and who is idle"),
                         ("handout", "how each participant connects"),
                         ("destroy", "destroy every participant's environment")):
        p = sub.add_parser(action, help=text)
        if action == "status":
            p.add_argument("--idle-minutes", type=float, default=IDLE_MINUTES,
                           help=f"idle after this many minutes (default {IDLE_MINUTES:g})")
        if action == "destroy":
            p.add_argument("--yes", "-y", action="store_true",
                           help="required: confirms the destroy")
    for p in sub.choices.values():
        p.add_argument("--name", default=DEFAULT_NAME,
                       help=f"workshop name, a prefix of every environment "
                       f"(default {DEFAULT_NAME})")
    return parser


def main(argv: list[str]) -> Any:
    try:
        args = build().parse_args(argv)
    except _HelpShown:
        return None
    return {"deploy": deploy, "status": status, "handout": handout,
            "destroy": destroy}[args.action](args)


def deploy(args) -> Any:
    from sindri_jupyter.frontends import display
    from sindri_jupyter.frontends.workshop import load_roster
    from sindri_jupyter.frontends.workshop_view import WorkshopProgress

    if Workshop.path_of(args.name).exists():
        raise UsageError(f"a workshop named {args.name!r} is already recorded",
                         hint="`%sindri workshop destroy --yes` first, or pass --name")
    workshop = Workshop.plan(load_roster(args.roster), args.file, name=args.name,
                             budget_usd=args.budget, expiry_hours=args.expiry_hours)
    workshop.configs()  # a bad base file fails here, in the cell, before anything runs
    view = WorkshopProgress(workshop)
    view.show()
    future = display.submit(_deploy(workshop, view))
    if args.wait:
        future.result()
        failed = [s for s in workshop.seats if s.outcome == "failed"]
        if failed:
            raise SindriError(
                f"{len(failed)} of {len(workshop.seats)} environments failed: "
                + "; ".join(f"{s.participant}: {s.error.splitlines()[0]}" for s in failed),
                hint="`%sindri workshop status` shows the rest; "
                "`%sindri workshop destroy --yes` removes all")
        handout(args)
    return None


async def _deploy(workshop: Workshop, view) -> None:
    from sindri_jupyter.core.engine import Engine

    engine = Engine()
    try:
        await workshop.deploy(engine, on_event=view.on_event, on_done=view.seat_done)
    finally:
        await engine.aclose()
        view.finish()


def status(args) -> Any:
    from sindri_jupyter.core import sync
    from sindri_jupyter.frontends.workshop_view import (
        STATUS_COLUMNS,
        show_table,
        status_cells,
    )

    workshop = Workshop.load(args.name)
    rows = sync.run(_with_engine(lambda e: workshop.status(
        e, idle_minutes=args.idle_minutes)))
    seats = {s.env: s for s in workshop.seats}
    cells = [status_cells(r, seats[r["environment"]]) for r in rows]
    colours = ["#ef6c00" if r["idle"] else "#c62828" if r["over_budget"] or r["expired"]
               else "" for r in rows]
    idle = sum(1 for r in rows if r["idle"])
    show_table(f"workshop {workshop.name}: {len(rows)} seats, {idle} idle",
               STATUS_COLUMNS, cells, colours)
    return None


def handout(args) -> Any:
    from sindri_jupyter.core.state import Store
    from sindri_jupyter.frontends.workshop_view import show_table

    workshop = Workshop.load(args.name)
    rows = workshop.handout(Store.default())
    columns = ["participant", "environment", "endpoint", "run", "budget", "expires"]
    show_table(f"workshop {workshop.name}: how to connect", columns,
               [[r[c] for c in columns] for r in rows])
    return None


def destroy(args) -> Any:
    from sindri_jupyter.core import sync

    if not args.yes:
        raise UsageError("not destroying the workshop without --yes",
                         hint=f"%sindri workshop destroy --name {args.name} --yes")
    workshop = Workshop.load(args.name)
    outcome = sync.run(_with_engine(workshop.destroy))
    for person, result in outcome.items():
        print(f"{person}: {result}")
    failed = [p for p, r in outcome.items() if r.startswith("FAILED")]
    if failed:
        raise SindriError(f"could not destroy the environments of {', '.join(failed)}",
                          hint="run `%sindri workshop destroy --yes` again, or "
                          "`%sindri status` to see them")
    print(f"workshop {workshop.name}: all {len(outcome)} environments are gone")
    return None


async def _with_engine(use):
    from sindri_jupyter.core.engine import Engine

    engine = Engine()
    try:
        return await use(engine)
    finally:
        await engine.aclose()
