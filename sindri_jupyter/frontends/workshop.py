"""Workshop mode: one environment per participant, deployed and removed together.

A roster (CSV with a ``name`` column, or a YAML list of names or mappings) and a
base ``sindri.yaml`` give one config per participant: the environment is named
``WORKSHOP-PERSON``, with the per-person budget as ``deployment.budget_usd`` and
the expiry as ``deployment.max_lifetime_hours``. All deploys run concurrently on
the one loop (``asyncio.gather``), so thirty take about as long as one. The
seats are kept in ``SINDRI_HOME/workshops/NAME.json`` (names, environments,
expiry, last activity; nothing secret) so that a later ``status`` or
``destroy``, in another kernel or after a restart, finds them.

This module has no widget dependency; ``workshop_view`` shows it.
"""

from __future__ import annotations

import asyncio
import csv
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sindri_jupyter.errors import ConfigError, NotFoundError, SindriError, UsageError

DEFAULT_NAME = "workshop"
IDLE_MINUTES = 10.0
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass
class Participant:
    name: str
    email: str = ""
    budget_usd: float | None = None
    expiry_hours: float | None = None


@dataclass
class Seat:
    """One participant's environment and what we last saw of it."""

    participant: str
    env: str
    budget_usd: float | None
    expires_at: float | None
    outcome: str = "pending"  # pending | ready | created | failed
    error: str = ""
    last_count: int | None = None
    last_active: float | None = None


def slug(text: str) -> str:
    """A participant's name as it appears in environment names."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.strip().lower()).strip("-")
    return cleaned or "participant"


# -- roster -------------------------------------------------------------------------


def load_roster(path: str | Path) -> list[Participant]:
    """Participants from a CSV (``name`` column) or a YAML list; checked for clashes."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"roster {path} does not exist",
                         hint="a CSV with a `name` column, or a YAML list of names")
    if path.suffix.lower() in (".yaml", ".yml"):
        people = _from_yaml(path)
    else:
        people = _from_csv(path)
    if not people:
        raise ConfigError([f"{path}: the roster lists nobody"])
    seen: dict[str, str] = {}
    for person in people:
        key = slug(person.name)
        if key in seen:
            raise ConfigError([(f"{path}: {person.name!r} and {seen[key]!r} would get the "
                               f"same environment name ({key})")],
                              hint="make the names differ in letters or digits")
        seen[key] = person.name
    return people


def _from_csv(path: Path) -> list[Participant]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "name" not in [c.strip() for c in reader.fieldnames]:
            raise ConfigError([(f"{path}:1: no `name` column (found: "
                               f"{', '.join(reader.fieldnames or []) or 'nothing'})")])
        people = []
        for line, row in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            if row.get("name"):
                people.append(_participant(row, f"{path}:{line}"))
    return people


def _from_yaml(path: Path) -> list[Participant]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from exc
    if isinstance(data, dict):
        data = data.get("participants")
    if not isinstance(data, list):
        raise ConfigError([(f"{path}: expected a list of participants "
                           "(or `participants:` with a list)")])
    people = []
    for i, item in enumerate(data, start=1):
        entry = {"name": item} if isinstance(item, str) else item
        if not isinstance(entry, dict) or not entry.get("name"):
            raise ConfigError([f"{path}: entry {i} has no name: {item!r}"])
        people.append(_participant(entry, f"{path}: entry {i}"))
    return people


def _participant(row: dict[str, Any], where: str) -> Participant:
    unknown = set(row) - {"name", "email", "budget_usd", "expiry_hours"}
    if unknown:
        raise ConfigError([f"{where}: unknown column(s) {', '.join(sorted(unknown))}"],
                          hint="allowed: name, email, budget_usd, expiry_hours")
    return Participant(str(row["name"]).strip(), str(row.get("email") or ""),
                       _number(row.get("budget_usd"), where, "budget_usd"),
                       _number(row.get("expiry_hours"), where, "expiry_hours"))


def _number(value: Any, where: str, key: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError([f"{where}: {key} must be a number, found {value!r}"]) from None
    if number <= 0:
        raise ConfigError([f"{where}: {key} must be more than 0, found {value!r}"])
    return number


# -- the workshop ---------------------------------------------------------------------


@dataclass
class Workshop:
    name: str
    base_config: str
    seats: list[Seat] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)

    @classmethod
    def plan(cls, roster: list[Participant], base_config: str, *,
             name: str = DEFAULT_NAME, budget_usd: float | None = None,
             expiry_hours: float | None = None) -> Workshop:
        """Seats for a roster; person-level budget/expiry win over the defaults."""
        if not _NAME_OK.match(name):
            raise UsageError(f"workshop name {name!r} is not usable in environment names",
                             hint="letters, digits, '-', '_' and '.'")
        now = time.time()
        seats = []
        for person in roster:
            hours = person.expiry_hours or expiry_hours
            seats.append(Seat(person.name, f"{name}-{slug(person.name)}"[:63],
                              person.budget_usd or budget_usd,
                              now + hours * 3600 if hours else None))
        return cls(name, str(Path(base_config).resolve()), seats)

    # -- persistence --------------------------------------------------------------

    @staticmethod
    def path_of(name: str) -> Path:
        from sindri_jupyter.core import paths

        folder = paths.home() / "workshops"
        folder.mkdir(mode=0o700, exist_ok=True)
        return folder / f"{name}.json"

    def save(self) -> None:
        data = {"name": self.name, "base_config": self.base_config,
                "created_at": self.created_at, "seats": [asdict(s) for s in self.seats]}
        path = self.path_of(self.name)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)

    @classmethod
    def load(cls, name: str = DEFAULT_NAME) -> Workshop:
        path = cls.path_of(name)
        if not path.exists():
            raise NotFoundError(f"no workshop named {name!r} in {path.parent}",
                                hint="`%sindri workshop deploy ROSTER -f BASE.yaml` "
                                "starts one")
        data = json.loads(path.read_text())
        return cls(data["name"], data["base_config"],
                   [Seat(**s) for s in data["seats"]], data["created_at"])

    def forget(self) -> None:
        self.path_of(self.name).unlink(missing_ok=True)

    # -- configs --------------------------------------------------------------------

    def configs(self) -> list[Any]:
        """One validated SindriConfig per seat, from the base file."""
        from sindri_jupyter.config import load
        from sindri_jupyter.config.models import SindriConfig

        base = load(self.base_config).model_dump(exclude_unset=True)
        configs = []
        for seat in self.seats:
            data = json.loads(json.dumps(base))  # a deep copy of plain data
            data["name"] = seat.env
            deployment = data.setdefault("deployment", {})
            if seat.budget_usd is not None:
                deployment["budget_usd"] = float(seat.budget_usd)
            if seat.expires_at is not None:
                hours = max(0.01, (seat.expires_at - time.time()) / 3600)
                deployment["max_lifetime_hours"] = round(hours, 3)
            try:
                configs.append(SindriConfig.model_validate(data))
            except ValueError as exc:
                raise ConfigError([f"{self.base_config} for {seat.participant}: {exc}"]) \
                    from None
        return configs

    # -- lifecycle ----------------------------------------------------------------------

    async def deploy(self, engine, *, wait: bool = True,
                     on_event: Callable[[Seat, Any], None] | None = None,
                     on_done: Callable[[Seat], None] | None = None) -> list[Seat]:
        """Deploy every seat at once; one failure does not stop the others."""
        configs = self.configs()
        self.save()  # a crash half-way still leaves `destroy` something to find

        async def one(seat: Seat, config) -> None:
            listener = (lambda event: on_event(seat, event)) if on_event else None
            try:
                record = await engine.deploy(config, config_path=self.base_config,
                                             wait=wait, on_event=listener)
            except SindriError as exc:
                seat.outcome, seat.error = "failed", str(exc)
            else:
                seat.outcome = "ready" if record.phase == "ready" else "created"
                seat.last_active = time.time()
            if on_done is not None:
                on_done(seat)

        await asyncio.gather(*(one(s, c) for s, c in zip(self.seats, configs)))
        self.save()
        return self.seats

    async def destroy(self, engine) -> dict[str, str]:
        """Destroy every seat's environment; what happened to each, by participant."""
        async def one(seat: Seat) -> str:
            if engine.store.find(seat.env) is None:
                return "not recorded (already gone)"
            try:
                await engine.destroy(seat.env)
            except SindriError as exc:
                return f"FAILED: {exc.message}"
            return "destroyed"

        results = await asyncio.gather(*(one(s) for s in self.seats))
        outcome = {s.participant: r for s, r in zip(self.seats, results)}
        if all(not r.startswith("FAILED") for r in results):
            self.forget()
        return outcome

    def handout(self, store) -> list[dict[str, str]]:
        """How each participant connects."""
        rows = []
        for seat in self.seats:
            record = store.find(seat.env)
            rows.append({"participant": seat.participant, "environment": seat.env,
                         "endpoint": _endpoint_text(record.endpoint if record else None),
                         "run": f"%%sindri run {seat.env}",
                         "expires": _when(seat.expires_at),
                         "budget": "-" if seat.budget_usd is None
                         else f"${seat.budget_usd:.2f}"})
        return rows

    async def status(self, engine, *, idle_minutes: float = IDLE_MINUTES,
                     probe: Callable | None = None) -> list[dict[str, Any]]:
        """Per seat: state, cost against budget, expiry, and idle time."""
        if probe is None:
            from sindri_jupyter.frontends.probe import probe
        now = time.time()
        rows = await asyncio.gather(*(self._seat_status(engine, s, probe, now)
                                      for s in self.seats))
        self.save()
        for row in rows:
            row["idle"] = row["idle_seconds"] is not None and \
                row["idle_seconds"] >= idle_minutes * 60
        return list(rows)

    async def _seat_status(self, engine, seat: Seat, probe, now: float) -> dict:
        row: dict[str, Any] = {"participant": seat.participant, "environment": seat.env,
                               "state": "GONE", "cost": 0.0, "idle_seconds": None,
                               "over_budget": False,
                               "expired": bool(seat.expires_at and now >= seat.expires_at),
                               "expires": _when(seat.expires_at), "note": seat.error}
        if engine.store.find(seat.env) is None:
            return row
        status = await engine.status(seat.env)
        record = status.record
        row["state"] = status.observed.state.value if status.observed else record.state
        row["cost"] = round(record.accrued(now), 4)
        row["over_budget"] = bool(seat.budget_usd and row["cost"] >= seat.budget_usd)
        if row["state"] == "RUNNING" and record.phase == "ready":
            look = await probe(record)
            _note_activity(seat, look, now)
            if not look.answered:
                row["note"] = look.note
            row["idle_seconds"] = None if seat.last_active is None \
                else max(0.0, now - seat.last_active)
        return row


def _note_activity(seat: Seat, look, now: float) -> None:
    """A busy kernel, or one whose execution count moved, was used just now."""
    moved = (look.execution_count is not None and seat.last_count is not None
             and look.execution_count != seat.last_count)
    if not look.answered or moved:
        seat.last_active = now
    if look.execution_count is not None:
        seat.last_count = look.execution_count
    if seat.last_active is None:
        seat.last_active = now


def _endpoint_text(endpoint: dict | None) -> str:
    if not endpoint:
        return "-"
    if endpoint.get("kind") == "local":
        return "this machine"
    return f"{endpoint.get('user')}@{endpoint.get('host')}:{endpoint.get('port')}"


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    left = epoch - time.time()
    if left <= 0:
        return "expired"
    hours, rest = divmod(int(left), 3600)
    return f"in {hours}h{rest // 60:02d}m"
