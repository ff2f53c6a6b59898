"""The state store: SQLite under ``SINDRI_HOME``, safe across processes.

The CLI and a notebook kernel may write at the same moment, so every write is
one ``BEGIN IMMEDIATE`` transaction in WAL mode with a generous busy timeout.
The provider's own listing stays the source of truth; this store remembers what
we asked for (the intent is written before any create) and what we last saw.
Nothing secret is stored here: no tokens, no private keys, no kernel keys.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sindri_jupyter.errors import NotFoundError, StateError

SCHEMA_VERSION = 2

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE deployments (
        name TEXT PRIMARY KEY,
        provider TEXT NOT NULL,
        marker TEXT NOT NULL,
        resource_id TEXT NOT NULL DEFAULT '',
        phase TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'PENDING',
        raw_state TEXT NOT NULL DEFAULT '',
        endpoint TEXT,
        handle_data TEXT NOT NULL DEFAULT '{}',
        config_path TEXT,
        price_per_hour REAL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        deployment TEXT NOT NULL,
        ts REAL NOT NULL,
        phase TEXT NOT NULL,
        message TEXT NOT NULL,
        elapsed REAL
    );
    CREATE INDEX events_by_deployment ON events(deployment, id);
    """,
    2: """
    ALTER TABLE deployments ADD COLUMN accrued_usd REAL NOT NULL DEFAULT 0;
    ALTER TABLE deployments ADD COLUMN billing_since REAL;
    """,
}

BILLING_STATES = {"RUNNING", "STARTING", "PROVISIONING", "UNKNOWN"}


@dataclass
class Record:
    """One deployment as the store knows it."""

    name: str
    provider: str
    marker: str
    resource_id: str
    phase: str  # intent | creating | waiting | ready | failed | stopped | destroying
    state: str
    raw_state: str
    endpoint: dict[str, Any] | None
    handle_data: dict[str, Any]
    config_path: str | None
    price_per_hour: float | None
    created_at: float
    updated_at: float
    accrued_usd: float = 0.0
    billing_since: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def accrued(self, now: float | None = None) -> float:
        """Cost so far: banked cost plus the open billing interval."""
        total = self.accrued_usd
        if self.billing_since is not None and self.price_per_hour:
            now = time.time() if now is None else now
            total += max(0.0, now - self.billing_since) / 3600 * self.price_per_hour
        return total

    def uptime(self, now: float | None = None) -> float | None:
        if self.billing_since is None:
            return None
        return max(0.0, (time.time() if now is None else now) - self.billing_since)


class Store:
    """Deployments and their events. Open one per process; it is thread-safe."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                str(self.path), timeout=30, isolation_level=None, check_same_thread=False
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            # WAL with synchronous=NORMAL cannot corrupt the store; it may lose
            # the last commits on power loss, never on a crash of this process.
            # Commits no longer wait for fsync, which the event log needs.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            self._migrate()
        except sqlite3.Error as exc:
            raise StateError(
                f"cannot open the state store {self.path}: {exc}",
                hint="check that SINDRI_HOME is writable (`sindri doctor`)",
            ) from exc

    @classmethod
    def default(cls) -> "Store":
        from sindri_jupyter.core.paths import home

        return cls(home() / "state.sqlite")

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StateError(f"state store write failed: {exc}",
                                 hint=f"is {self.path} on a full or read-only disk?") from exc

    def _migrate(self) -> None:
        with self._write() as db:
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise StateError(
                    f"{self.path} has schema version {current}, newer than this "
                    f"release ({SCHEMA_VERSION})",
                    hint="upgrade sindri-jupyter, or point SINDRI_HOME elsewhere",
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version].split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                       (str(SCHEMA_VERSION),))

    def schema_version(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0])

    # -- deployments ---------------------------------------------------------

    def record_intent(self, name: str, provider: str, marker: str, *,
                      config_path: str | None, price_per_hour: float | None,
                      handle_data: dict[str, Any] | None = None) -> Record:
        """Write down that we are about to create; refuses a live duplicate."""
        now = time.time()
        with self._write() as db:
            row = db.execute("SELECT phase FROM deployments WHERE name=?", (name,)).fetchone()
            if row is not None:
                raise StateError(
                    f"an environment named {name!r} is already recorded ({row[0]})",
                    hint=f"run `sindri status {name}`, or `sindri destroy {name}` first",
                )
            db.execute(
                "INSERT INTO deployments (name, provider, marker, phase, config_path,"
                " price_per_hour, handle_data, created_at, updated_at)"
                " VALUES (?, ?, ?, 'intent', ?, ?, ?, ?, ?)",
                (name, provider, marker, config_path, price_per_hour,
                 json.dumps(handle_data or {}), now, now),
            )
            self._event(db, name, "intent", f"create on {provider} recorded", None)
        return self.get(name)

    def update(self, name: str, **fields: Any) -> Record:
        """Change columns of one deployment; the billing clock follows ``state``."""
        allowed = {"resource_id", "phase", "state", "raw_state", "endpoint",
                   "handle_data", "price_per_hour", "config_path"}
        unknown = set(fields) - allowed
        if unknown:
            raise StateError(f"cannot update {sorted(unknown)} (internal misuse)")
        for key in ("endpoint", "handle_data"):
            if key in fields and fields[key] is not None:
                fields[key] = json.dumps(fields[key])
        now = time.time()
        with self._write() as db:
            row = self._row(db, name)
            if "state" in fields:
                phase = fields.get("phase", row["phase"])
                fields.update(self._billing(row, phase, fields["state"], now))
            fields["updated_at"] = now
            cols = ", ".join(f"{k}=?" for k in fields)
            db.execute(f"UPDATE deployments SET {cols} WHERE name=?",
                       (*fields.values(), name))
        return self.get(name)

    @staticmethod
    def _billing(row: sqlite3.Row, phase: str, state: str, now: float) -> dict[str, Any]:
        """Open or close the billing interval when the state crosses the line."""
        billing = state in BILLING_STATES and phase != "intent"
        since, banked = row["billing_since"], row["accrued_usd"]
        if billing and since is None:
            return {"billing_since": now}
        if not billing and since is not None:
            price = row["price_per_hour"] or 0.0
            return {"billing_since": None,
                    "accrued_usd": banked + max(0.0, now - since) / 3600 * price}
        return {}

    def forget(self, name: str) -> None:
        with self._write() as db:
            self._row(db, name)
            db.execute("DELETE FROM deployments WHERE name=?", (name,))
            self._event(db, name, "destroyed", "removed from the state store", None)

    def get(self, name: str) -> Record:
        return self._to_record(self._row(self._db, name))

    def find(self, name: str) -> Record | None:
        row = self._db.execute("SELECT * FROM deployments WHERE name=?", (name,)).fetchone()
        return self._to_record(row) if row else None

    def all(self) -> list[Record]:
        rows = self._db.execute("SELECT * FROM deployments ORDER BY created_at").fetchall()
        return [self._to_record(r) for r in rows]

    def _row(self, db: sqlite3.Connection, name: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM deployments WHERE name=?", (name,)).fetchone()
        if row is None:
            raise NotFoundError(f"no environment named {name!r}",
                                hint="`sindri status --all` lists the recorded ones")
        return row

    @staticmethod
    def _to_record(row: sqlite3.Row) -> Record:
        data = dict(row)
        data["endpoint"] = json.loads(data["endpoint"]) if data["endpoint"] else None
        data["handle_data"] = json.loads(data["handle_data"] or "{}")
        return Record(**data)

    # -- events --------------------------------------------------------------

    def add_event(self, name: str, phase: str, message: str,
                  elapsed: float | None = None) -> None:
        with self._write() as db:
            self._event(db, name, phase, message, elapsed)

    @staticmethod
    def _event(db, name: str, phase: str, message: str, elapsed: float | None) -> None:
        db.execute("INSERT INTO events (deployment, ts, phase, message, elapsed)"
                   " VALUES (?, ?, ?, ?, ?)", (name, time.time(), phase, message, elapsed))

    def events(self, name: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT ts, phase, message, elapsed FROM events WHERE deployment=? ORDER BY id",
            (name,)).fetchall()
        return [dict(r) for r in rows]
