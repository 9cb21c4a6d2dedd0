"""The SQLite file itself: it survives a killed process, refuses what it cannot read (naming the
path), migrates older files forward, and serves every adapter statement from an index."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agentsapi.adapters.sqlite.db import Database, DataDirError, Migration
from agentsapi.adapters.sqlite.keys import SqliteKeyStore
from agentsapi.adapters.sqlite.ratelimit import SqliteWindowCounter
from agentsapi.adapters.sqlite.store import STORE_MIGRATIONS, SqliteStore
from agentsapi.models.agents import AgentAlias, AgentHead, AgentVersion
from agentsapi.models.api_keys import ApiKeyRecord
from agentsapi.models.conversations import Conversation
from agentsapi.models.entries import MessageInputEntry
from agentsapi.models.files import FileRecord

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 1, tzinfo=UTC)
WRITER = """
import os, signal, sys
sys.path[:0] = [{root!r}, {layers!r}]
from datetime import UTC, datetime
from agentsapi.adapters.sqlite.db import Database
from agentsapi.adapters.sqlite.keys import SqliteKeyStore
from agentsapi.adapters.sqlite.store import STORE_MIGRATIONS, SqliteStore
from agentsapi.models.agents import AgentHead, AgentVersion
from agentsapi.models.api_keys import ApiKeyRecord
from agentsapi.models.conversations import Conversation
from agentsapi.models.entries import MessageInputEntry

t0 = datetime(2026, 3, 1, tzinfo=UTC)
db = Database({path!r}, STORE_MIGRATIONS)
store = SqliteStore(db)
store.create_agent("ws", AgentHead(id="ag_1", active_version=0, latest_version=0, created_at=t0, updated_at=t0),
                   AgentVersion(id="ag_1", version=0, model="m", name="kept ✓", created_at=t0))
store.create_conversation("ws", Conversation(id="conv_1", created_at=t0, updated_at=t0, model="m"),
                          [MessageInputEntry(id="msg_0", content="one")])
for n in range(1, 20):
    head = store.get_conversation("ws", "conv_1")
    store.append_entries("ws", head, [MessageInputEntry(id=f"msg_{{n}}", content=str(n))], expected_count=head.entry_count)
SqliteKeyStore(db).put_key("h1", ApiKeyRecord(key_id="key_1", workspace="ws", hint="agk_...", created_at=1))
print("acknowledged", flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint: as a crash would leave it
"""


def test_everything_acknowledged_survives_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "data" / "agents.db"
    script = WRITER.format(root=str(ROOT), layers=str(ROOT / "layers"), path=str(path))
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "acknowledged" and done.returncode == -9, done.stderr
    assert (tmp_path / "data" / "agents.db-wal").exists()  # the commits are still only in the WAL

    db = Database(path, STORE_MIGRATIONS)
    store = SqliteStore(db)
    assert store.get_agent_version("ws", "ag_1", 0).name == "kept ✓"
    assert [e.content for e in store.get_entries("ws", "conv_1")] == ["one", *[str(n) for n in range(1, 20)]]
    assert store.get_conversation("ws", "conv_1").entry_count == 20
    assert SqliteKeyStore(db).get_key("h1").key_id == "key_1"
    assert db.version == 1


def test_reopening_the_file_in_a_new_database_sees_everything(tmp_path: Path) -> None:
    path = tmp_path / "agents.db"
    first = Database(path, STORE_MIGRATIONS)
    store = SqliteStore(first)
    store.create_agent("ws", AgentHead(id="ag_1", active_version=0, latest_version=0, created_at=T0, updated_at=T0),
                       AgentVersion(id="ag_1", version=0, model="m", name="a", created_at=T0))
    store.put_alias("ws", "ag_1", AgentAlias(alias="stable", version=0, created_at=T0, updated_at=T0))
    store.create_conversation("ws", Conversation(id="conv_1", created_at=T0, updated_at=T0, model="m"),
                              [MessageInputEntry(id="msg_0", content="hello")])
    store.put_file("ws", FileRecord(id="f-1", bytes=1, created_at=1, filename="a.txt", purpose="batch"))
    SqliteKeyStore(first).put_key("h1", ApiKeyRecord(key_id="key_1", workspace="ws", hint="agk_...", created_at=1))
    assert SqliteWindowCounter(first).count("ws", 60, 1, 360) is True
    first.close()

    again = Database(path, STORE_MIGRATIONS)
    reopened = SqliteStore(again)
    assert reopened.get_agent_head("ws", "ag_1") is not None and reopened.get_alias("ws", "ag_1", "stable") is not None
    assert [e.content for e in reopened.get_entries("ws", "conv_1")] == ["hello"]
    assert [f.id for f in reopened.list_files("ws", 10, None).items] == ["f-1"]
    assert SqliteKeyStore(again).get_key("h1") is not None
    assert SqliteWindowCounter(again).count("ws", 60, 1, 360) is False  # the window's count was kept too
    assert [tuple(row) for row in again.connection().execute("SELECT version FROM schema_version")] == [(1,)]


EXTRA = Migration(2, "a later release's table", ["CREATE TABLE later (id TEXT PRIMARY KEY)"])


def test_a_file_from_a_newer_release_is_refused_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "agents.db"
    Database(path, [*STORE_MIGRATIONS, EXTRA]).close()
    with pytest.raises(DataDirError) as refused:
        Database(path, STORE_MIGRATIONS)
    assert str(path) in str(refused.value) and "newer release" in str(refused.value)


@pytest.mark.parametrize("content", [b"this is not a database, it is a text file\n" * 200, b"SQLite format 3\x00" + b"\x07" * 4000])
def test_a_corrupt_file_is_refused_naming_the_path_and_left_as_it_was(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "agents.db"
    path.write_bytes(content)
    with pytest.raises(DataDirError) as refused:
        Database(path, STORE_MIGRATIONS)
    assert str(path) in str(refused.value)
    assert path.read_bytes() == content  # never replaced by a fresh database


def test_an_older_file_is_migrated_forward_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "agents.db"
    old = Database(path, STORE_MIGRATIONS)
    SqliteKeyStore(old).put_key("h1", ApiKeyRecord(key_id="key_1", workspace="ws", hint="agk_...", created_at=1))
    old.close()
    new = Database(path, [*STORE_MIGRATIONS, EXTRA])
    assert new.version == 2
    assert [row[0] for row in new.connection().execute("SELECT version FROM schema_version ORDER BY version")] == [1, 2]
    new.connection().execute("INSERT INTO later VALUES ('x')")
    assert SqliteKeyStore(new).get_key("h1") is not None


def test_a_failing_migration_leaves_the_file_at_its_old_version(tmp_path: Path) -> None:
    path = tmp_path / "agents.db"
    Database(path, STORE_MIGRATIONS).close()
    broken = Migration(2, "broken", ["CREATE TABLE half_done (id TEXT)", "THIS IS NOT SQL"])
    with pytest.raises(DataDirError, match=str(path)):
        Database(path, [*STORE_MIGRATIONS, broken])
    db = Database(path, STORE_MIGRATIONS)
    assert db.version == 1
    assert not db.connection().execute("SELECT name FROM sqlite_master WHERE name = 'half_done'").fetchall()


def test_every_statement_is_served_by_an_index(tmp_path: Path) -> None:
    """No full-table scan and no sort step, whatever the data grows to: the plan of every statement
    the adapters run (traced while they do a bit of everything) searches an index."""
    db = Database(tmp_path / "agents.db", STORE_MIGRATIONS)
    statements: list[str] = []
    db.connection().set_trace_callback(statements.append)
    store, keys, counter = SqliteStore(db), SqliteKeyStore(db), SqliteWindowCounter(db)
    head = AgentHead(id="ag_1", active_version=0, latest_version=0, created_at=T0, updated_at=T0)
    version = AgentVersion(id="ag_1", version=0, model="m", name="a", created_at=T0)
    store.create_agent("ws", head, version)
    head1 = head.model_copy(update={"latest_version": 1, "active_version": 1})
    store.add_agent_version("ws", head1, version.model_copy(update={"version": 1}), expected_latest=0)
    store.set_active_version("ws", head1)
    store.get_agent_head("ws", "ag_1"), store.get_agent_version("ws", "ag_1", 1), store.list_agent_versions("ws", "ag_1")
    store.put_alias("ws", "ag_1", AgentAlias(alias="a", version=0, created_at=T0, updated_at=T0))
    store.get_alias("ws", "ag_1", "a"), store.list_aliases("ws", "ag_1"), store.delete_alias("ws", "ag_1", "a")
    for n in range(3):
        store.create_conversation("ws", Conversation(id=f"conv_{n}", created_at=T0, updated_at=T0, model="m"),
                                  [MessageInputEntry(id="msg_0", content="x")])
        store.put_file("ws", FileRecord(id=f"f-{n}", bytes=1, created_at=n, filename="a", purpose="batch"))
        store.create_agent("ws", head.model_copy(update={"id": f"ag_x{n}"}), version.model_copy(update={"id": f"ag_x{n}"}))
    conversation = store.get_conversation("ws", "conv_0")
    store.append_entries("ws", conversation, [MessageInputEntry(id="msg_1", content="y")], expected_count=1)
    store.get_entries("ws", "conv_0")
    for listing in (store.list_agents, store.list_conversations, store.list_files):
        listing("ws", 1, listing("ws", 1, None).next_token)
    store.get_file("ws", "f-0"), store.delete_file("ws", "f-0"), store.delete_conversation("ws", "conv_0")
    store.delete_agent("ws", "ag_1")
    keys.put_key("h1", ApiKeyRecord(key_id="key_1", workspace="ws", hint="agk_...", created_at=1))
    keys.get_key("h1"), keys.list_keys(), keys.revoke_key("key_1", 5)
    counter.count("ws", 60, 5, 360), counter.count("ws", 60, 5, 360), counter.count("ws", 420, 5, 720)
    db.connection().set_trace_callback(None)

    planned = [s for s in statements if s.split()[0].upper() in ("SELECT", "UPDATE", "DELETE", "INSERT")]
    assert len(planned) > 30
    listing_keys = "SELECT data FROM api_keys ORDER BY sort_key"
    for statement in planned:
        if statement == listing_keys:
            continue
        plan = [row[3] for row in db.connection().execute(f"EXPLAIN QUERY PLAN {statement}")]
        assert not [step for step in plan if step.startswith("SCAN") or "TEMP B-TREE" in step], (statement, plan)
    # the one walk the keys listing does is over its index, in order (there is no workspace to narrow it)
    listing_plan = [row[3] for row in db.connection().execute(f"EXPLAIN QUERY PLAN {listing_keys}")]
    assert listing_plan == ["SCAN api_keys USING INDEX api_keys_listing"]


def test_expired_rate_windows_are_pruned_as_new_ones_open(tmp_path: Path) -> None:
    db = Database(tmp_path / "agents.db", STORE_MIGRATIONS)
    counter = SqliteWindowCounter(db)
    for minute in range(30):
        for workspace in ("a", "b", "c"):
            counter.count(workspace, minute * 60, 10, minute * 60 + 300)
    rows = db.connection().execute("SELECT COUNT(*), MIN(window_start) FROM rate_windows").fetchall()[0]
    assert rows[0] <= 3 * 6 and rows[1] >= 29 * 60 - 300  # five minutes of windows kept, the rest gone


def test_a_conflicting_write_leaves_no_open_transaction(tmp_path: Path) -> None:
    """A Conflict raised inside a write rolls back: the next write on the same thread proceeds."""
    db = Database(tmp_path / "agents.db", STORE_MIGRATIONS)
    store = SqliteStore(db)
    store.create_conversation("ws", Conversation(id="conv_1", created_at=T0, updated_at=T0, model="m"), [])
    conversation = store.get_conversation("ws", "conv_1")
    from agentsapi.errors import Conflict

    with pytest.raises(Conflict):
        store.append_entries("ws", conversation, [MessageInputEntry(id="m", content="x")], expected_count=5)
    assert not db.connection().in_transaction
    store.append_entries("ws", conversation, [MessageInputEntry(id="m", content="x")], expected_count=0)
    other = sqlite3.connect(tmp_path / "agents.db")
    assert other.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 1
    other.close()
