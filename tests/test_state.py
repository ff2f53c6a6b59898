"""The state store: concurrent writers in separate processes, migrations, cost."""

from __future__ import annotations

import multiprocessing
import sqlite3

import pytest

from sindri_jupyter.core.state import SCHEMA_VERSION, Store
from sindri_jupyter.errors import NotFoundError, StateError

WRITERS, WRITES = 4, 60


def _writer(path: str, index: int) -> None:
    store = Store(path)
    name = f"env-{index}"
    store.record_intent(name, "local", f"m{index}", config_path=None, price_per_hour=1.0)
    for i in range(WRITES):
        store.add_event(name, "poll", f"event {i}")
        store.add_event("shared", "poll", f"{index}:{i}")
        store.update(name, state="RUNNING" if i % 2 else "STOPPED", phase="waiting")
    store.close()


def test_concurrent_processes_lose_nothing(tmp_path):
    path = str(tmp_path / "state.sqlite")
    Store(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, i)) for i in range(WRITERS)]

    for p in procs:
        p.start()
    for p in procs:
        p.join(120)

    assert [p.exitcode for p in procs] == [0] * WRITERS
    store = Store(path)
    assert len(store.all()) == WRITERS
    assert len(store.events("shared")) == WRITERS * WRITES
    for i in range(WRITERS):
        assert len(store.events(f"env-{i}")) == WRITES + 1
    check = sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0]
    assert check == "ok"


def test_intent_is_recorded_once(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    store.record_intent("a", "local", "m", config_path=None, price_per_hour=None)

    with pytest.raises(StateError) as info:
        store.record_intent("a", "local", "m2", config_path=None, price_per_hour=None)

    assert "sindri destroy a" in str(info.value)


def test_accrued_cost_follows_billing_states(tmp_path, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("sindri_jupyter.core.state.time.time", lambda: clock[0])
    store = Store(tmp_path / "s.sqlite")
    store.record_intent("a", "runpod", "m", config_path=None, price_per_hour=2.0)

    store.update("a", phase="waiting", state="RUNNING")
    clock[0] += 1800
    store.update("a", state="STOPPED")
    clock[0] += 3600
    stopped_cost = store.get("a").accrued()
    store.update("a", state="RUNNING")
    clock[0] += 900

    assert stopped_cost == pytest.approx(1.0)
    assert store.get("a").accrued() == pytest.approx(1.5)


def test_migrates_a_version_1_store(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
        "INSERT INTO meta VALUES ('schema_version', '1');"
        "CREATE TABLE deployments (name TEXT PRIMARY KEY, provider TEXT NOT NULL,"
        " marker TEXT NOT NULL, resource_id TEXT NOT NULL DEFAULT '', phase TEXT NOT NULL,"
        " state TEXT NOT NULL DEFAULT 'PENDING', raw_state TEXT NOT NULL DEFAULT '',"
        " endpoint TEXT, handle_data TEXT NOT NULL DEFAULT '{}', config_path TEXT,"
        " price_per_hour REAL, created_at REAL NOT NULL, updated_at REAL NOT NULL);"
        "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, deployment TEXT,"
        " ts REAL, phase TEXT, message TEXT, elapsed REAL);"
        "INSERT INTO deployments (name, provider, marker, phase, created_at, updated_at)"
        " VALUES ('old', 'local', 'm', 'ready', 1, 1);")
    db.commit()
    db.close()

    store = Store(path)

    assert store.schema_version() == SCHEMA_VERSION
    assert store.get("old").accrued() == 0.0


def test_newer_store_is_refused_with_a_hint(tmp_path):
    path = tmp_path / "new.sqlite"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()

    with pytest.raises(StateError) as info:
        Store(path)

    assert "upgrade sindri-jupyter" in str(info.value)


def test_unknown_name_is_not_found_with_hint(tmp_path):
    with pytest.raises(NotFoundError) as info:
        Store(tmp_path / "s.sqlite").get("nope")

    assert "sindri status --all" in str(info.value)
