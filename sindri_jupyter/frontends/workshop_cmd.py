"""``sindri workshop ...``: parse and run the workshop subcommands.

The arguments are parsed by the CLI's parser (``sindri workshop ...`` is the
same); these functions do the work. In a notebook ``deploy`` returns at once
with a live table unless ``--wait``; elsewhere they print text.

    %sindri workshop deploy roster.csv -f base.yaml --budget 5 --expiry-hours 3
    %sindri workshop status            # who is idle, cost against budget
    %sindri workshop handout           # how each participant connects
    %sindri workshop destroy --yes
"""

from __future__ import annotations

from typing import Any

from sindri_jupyter.errors import SindriError, UsageError
from sindri_jupyter.frontends.workshop import Workshop


def deploy(args) -> Any:
    from sindri_jupyter.frontends import display
    from sindri_jupyter.frontends.workshop import load_roster
    from sindri_jupyter.frontends.workshop_view import WorkshopProgress

    if Workshop.path_of(args.name).exists():
        raise UsageError(f"a workshop named {args.name!r} is already recorded",
                         hint="`sindri workshop destroy --yes` first, or pass --name")
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
                hint="`sindri workshop status` shows the rest; "
                "`sindri workshop destroy --yes` removes all")
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
                          hint="run `sindri workshop destroy --yes` again, or "
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


ACTIONS = {"deploy": deploy, "status": status, "handout": handout, "destroy": destroy}
