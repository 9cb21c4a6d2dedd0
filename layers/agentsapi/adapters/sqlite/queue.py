"""SQLite adapter of the job-queue ports (JobQueue and QueueConsumer), with SQS's semantics.

Messages live in one table shared by every queue (a dead-letter queue is just another name).
A receive makes a message invisible for the visibility timeout and hands out a fresh receipt:
deleting or retrying needs that receipt, so a receiver whose delivery timed out and was handed
to another cannot touch the new one. The state is in the database, so a message received by a
server that then died is delivered again once its timeout passes after the restart. As SQS's
redrive policy, a message already received ``max_receives`` times is moved to the dead-letter
queue at its next receive instead of being delivered; its receive count carries over (SQS and
moto do the same). Order is send order among visible messages (FIFO-ish, like a standard queue
with one producer).

Receivers in this process wake as soon as a message is sent (a condition per queue); anything
else (another process, a timeout running out) is noticed within ``POLL_S``.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from typing import Any

from ...jobqueue import Message
from .db import Database, Migration

POLL_S = 0.2

QUEUE_MIGRATION = Migration(3, "job queue", [
    # seq: AUTOINCREMENT so a number is never reused, and the order of sends is the order of receives.
    """CREATE TABLE queue_messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        id TEXT NOT NULL UNIQUE,
        body TEXT NOT NULL,
        sent_at REAL NOT NULL,
        visible_at REAL NOT NULL,
        receive_count INTEGER NOT NULL DEFAULT 0,
        receipt TEXT
    )""",
    "CREATE INDEX queue_messages_order ON queue_messages (queue, seq)",
])

# Fair dispatch: messages carry a group (the workspace, for batch requests) and a receive takes
# the oldest visible message of each group in turn, least recently served group first, so one
# workspace's backlog never holds up another's job (SQS's fair queues do the same per
# MessageGroupId). Older messages get the empty group.
FAIR_QUEUE_MIGRATION = Migration(4, "job queue: fair dispatch per group", [
    "ALTER TABLE queue_messages ADD COLUMN group_id TEXT NOT NULL DEFAULT ''",
    "CREATE INDEX queue_messages_groups ON queue_messages (queue, group_id, visible_at, seq)",
    """CREATE TABLE queue_groups (
        queue TEXT NOT NULL, group_id TEXT NOT NULL, served INTEGER NOT NULL,
        PRIMARY KEY (queue, group_id)) WITHOUT ROWID""",
])


class _Signal:
    """Wakes this process's receivers of one queue when a message arrives."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.generation = 0

    def notify(self) -> None:
        with self.condition:
            self.generation += 1
            self.condition.notify_all()


_signals: dict[tuple[str, str], _Signal] = {}
_signals_lock = threading.Lock()


def _signal(db: Database, name: str) -> _Signal:
    with _signals_lock:
        return _signals.setdefault((str(db.path.resolve()), name), _Signal())


class SqliteQueue:
    def __init__(self, db: Database, name: str, visibility_timeout_s: float = 30.0, max_receives: int = 5,
                 dead_letter_queue: str | None = None, group_key: str = "ws") -> None:
        if max_receives < 1 or visibility_timeout_s < 0:
            raise ValueError("max_receives >= 1 and visibility_timeout_s >= 0 required")
        self.db = db
        self.name = name
        self.visibility_timeout_s = visibility_timeout_s
        self.max_receives = max_receives
        self.dead_letter_queue = dead_letter_queue
        self.group_key = group_key  # the message field that names its group (fair dispatch)
        self._signal = _signal(db, name)

    @property
    def arn(self) -> str:
        return f"arn:aws:sqs:local:000000000000:{self.name}"

    # -- JobQueue ---------------------------------------------------------------------------------
    def send(self, messages: list[dict[str, Any]]) -> None:
        now = time.time()
        rows = [(self.name, str(uuid.uuid4()), json.dumps(m), now, now, str(m.get(self.group_key, "")))
                for m in messages]
        with self.db.write() as connection:  # one transaction: a job's messages all exist, or none
            connection.executemany("INSERT INTO queue_messages (queue, id, body, sent_at, visible_at, group_id) "
                                   "VALUES (?, ?, ?, ?, ?, ?)", rows)
        self._signal.notify()

    # -- QueueConsumer ----------------------------------------------------------------------------
    def receive(self, max_messages: int = 10, wait_s: float = 0) -> list[Message]:
        deadline = time.monotonic() + wait_s
        while True:
            generation = self._signal.generation
            found = self._receive_now(max(1, max_messages))
            remaining = deadline - time.monotonic()
            if found or remaining <= 0:
                return found
            with self._signal.condition:
                if self._signal.generation == generation:  # nothing sent since we looked
                    self._signal.condition.wait(min(remaining, POLL_S))

    def _receive_now(self, limit: int) -> list[Message]:
        now = time.time()
        any_visible = "SELECT 1 FROM queue_messages WHERE queue = ? AND visible_at <= ? LIMIT 1"
        # A plain read first: an idle poller must not take the write lock the API's writes need.
        if not self.db.connection().execute(any_visible, (self.name, now)).fetchall():
            return []
        received: list[Message] = []
        moved = False
        with self.db.write() as connection:
            rows = self._fair_pick(connection, now, limit)
            for row in rows:
                if self.dead_letter_queue and row["receive_count"] >= self.max_receives:
                    connection.execute("UPDATE queue_messages SET queue = ?, visible_at = ?, receipt = NULL WHERE seq = ?",
                                       (self.dead_letter_queue, now, row["seq"]))
                    moved = True
                    continue
                token = secrets.token_hex(16)
                connection.execute("UPDATE queue_messages SET receive_count = receive_count + 1, visible_at = ?, "
                                   "receipt = ? WHERE seq = ?", (now + self.visibility_timeout_s, token, row["seq"]))
                received.append(Message(id=row["id"], receipt=f"{row['seq']}:{token}", body=row["body"],
                                        receive_count=row["receive_count"] + 1, sent_at=row["sent_at"]))
        if moved and self.dead_letter_queue:
            _signal(self.db, self.dead_letter_queue).notify()
        return received

    def _fair_pick(self, connection: Any, now: float, limit: int) -> list[Any]:
        """Up to ``limit`` visible messages, round robin over the groups that have one (least
        recently served first), oldest first within a group."""
        heads = connection.execute(
            "SELECT m.group_id, MIN(m.seq) AS seq, COALESCE(g.served, 0) AS served FROM queue_messages m "
            "LEFT JOIN queue_groups g ON g.queue = m.queue AND g.group_id = m.group_id "
            "WHERE m.queue = ? AND m.visible_at <= ? GROUP BY m.group_id ORDER BY served, seq",
            (self.name, now)).fetchall()
        rows: list[Any] = []
        turn = connection.execute("SELECT COALESCE(MAX(served), 0) FROM queue_groups WHERE queue = ?",
                                  (self.name,)).fetchone()[0]
        wanted = {head["group_id"]: [] for head in heads}
        for head in heads:  # each group's oldest messages, as many as a fair share of the limit
            share = max(1, limit // max(1, len(heads)))
            wanted[head["group_id"]] = connection.execute(
                "SELECT seq, id, body, sent_at, receive_count, group_id FROM queue_messages "
                "WHERE queue = ? AND group_id = ? AND visible_at <= ? ORDER BY seq LIMIT ?",
                (self.name, head["group_id"], now, share)).fetchall()
        for round_number in range(limit):  # interleave: one of each group per round
            for head in heads:
                group_rows = wanted[head["group_id"]]
                if round_number < len(group_rows) and len(rows) < limit:
                    rows.append(group_rows[round_number])
        for group in dict.fromkeys(row["group_id"] for row in rows):
            turn += 1
            connection.execute("INSERT INTO queue_groups (queue, group_id, served) VALUES (?, ?, ?) "
                               "ON CONFLICT (queue, group_id) DO UPDATE SET served = excluded.served",
                               (self.name, group, turn))
        return rows

    def delete(self, receipt: str) -> None:
        parsed = _parse(receipt)
        if parsed:
            with self.db.write() as connection:
                connection.execute("DELETE FROM queue_messages WHERE seq = ? AND receipt = ? AND queue = ?",
                                   (*parsed, self.name))

    def retry_later(self, receipt: str, delay_s: float) -> None:
        parsed = _parse(receipt)
        if parsed:
            with self.db.write() as connection:
                connection.execute("UPDATE queue_messages SET visible_at = ? WHERE seq = ? AND receipt = ? AND queue = ?",
                                   (time.time() + max(0.0, delay_s), *parsed, self.name))
            if delay_s <= 0:
                self._signal.notify()

    def release_in_flight(self) -> int:
        """Make every message of this queue that is in flight visible now (receive counts kept).
        Only for the start-up of a server that is the one consumer of this database: each
        delivery in flight was to the process that died, and waiting out its visibility timeout
        (sized for the longest run) would only delay the resumption. Returns how many."""
        now = time.time()
        with self.db.write() as connection:
            count = connection.execute("UPDATE queue_messages SET visible_at = ? WHERE queue = ? AND visible_at > ?",
                                       (now, self.name, now)).rowcount
        self._signal.notify()
        return count

    def pending(self) -> int:
        row = self.db.connection().execute("SELECT COUNT(*) FROM queue_messages WHERE queue = ?", (self.name,)).fetchone()
        return int(row[0])


def _parse(receipt: str) -> tuple[int, str] | None:
    """``<seq>:<token>``; anything else names no delivery (and changes nothing)."""
    seq, _, token = str(receipt).partition(":")
    return (int(seq), token) if seq.isdigit() and token else None
