"""The job-queue ports' contract (JobQueue.send and QueueConsumer), held by SQS (moto) and
SqliteQueue: visibility timeout, receipts, receive counts, redrive to the dead-letter queue,
redelivery after a crash; and, with the batch store, a job that resumes after a crash without
running any request twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agentsapi.models.batch import BatchItem, BatchJob
from tests.contract.conftest import MAX_RECEIVES, VISIBILITY_S, Backend

ROOT = Path(__file__).resolve().parents[2]
WAIT_OUT_VISIBILITY_S = VISIBILITY_S + 0.3


def bodies(messages: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(m.body) for m in messages]


def receive_all(queue: Any, rounds: int = 20) -> list[Any]:
    found: list[Any] = []
    for _ in range(rounds):
        got = queue.receive(10)
        if not got:
            break
        found.extend(got)
    return found


def test_send_receive_delete(backend: Backend) -> None:
    queue, dlq = backend.queues()
    messages = [{"ws": "w", "job_id": "batch_1", "index": n} for n in range(25)]  # more than SQS's batch of 10
    queue.send(messages)
    assert queue.pending() == 25 and dlq.pending() == 0
    received = receive_all(queue)
    assert sorted(bodies(received), key=lambda b: b["index"]) == messages  # each once
    assert {m.receive_count for m in received} == {1} and len({m.id for m in received}) == 25
    assert all(time.time() - 60 < m.sent_at <= time.time() + 1 for m in received)
    assert queue.pending() == 25  # in flight still counts
    assert queue.receive(10) == []  # all invisible
    for message in received:
        queue.delete(message.receipt)
    assert queue.pending() == 0


def test_a_received_message_comes_back_after_the_visibility_timeout(backend: Backend) -> None:
    queue, _ = backend.queues()
    queue.send([{"n": 1}])
    (first,) = queue.receive(10)
    assert queue.receive(10) == []
    time.sleep(WAIT_OUT_VISIBILITY_S)
    (again,) = queue.receive(10)
    assert (again.id, again.body, again.receive_count) == (first.id, first.body, 2)
    assert again.receipt != first.receipt  # a new delivery, a new receipt
    queue.delete(again.receipt)
    assert queue.pending() == 0


def test_retry_later_and_unknown_receipts(backend: Backend) -> None:
    queue, _ = backend.queues()
    queue.send([{"n": 1}])
    (first,) = queue.receive(10)
    queue.retry_later(first.receipt, 0)  # at once
    (second,) = queue.receive(10)
    assert second.receive_count == 2
    queue.delete(second.receipt)
    queue.send([{"n": 2}])
    (first,) = queue.receive(10)
    queue.retry_later(first.receipt, 1)
    assert queue.receive(10) == []
    time.sleep(WAIT_OUT_VISIBILITY_S)
    (second,) = queue.receive(10)
    assert (second.receive_count, json.loads(second.body)) == (2, {"n": 2})
    queue.delete("garbage")  # a receipt naming nothing changes nothing, quietly
    queue.retry_later("garbage", 0)
    assert queue.pending() == 1
    queue.delete(second.receipt)
    assert queue.pending() == 0


def test_redrive_to_the_dead_letter_queue_after_max_receives(backend: Backend) -> None:
    queue, dlq = backend.queues()
    queue.send([{"poison": True}, {"fine": True}])
    for attempt in range(1, MAX_RECEIVES + 1):
        got = {json.dumps(json.loads(m.body)): m for m in queue.receive(10)}
        poison = got['{"poison": true}']
        assert poison.receive_count == attempt
        queue.retry_later(poison.receipt, 0)
        if '{"fine": true}' in got:
            queue.delete(got['{"fine": true}'].receipt)
    assert queue.receive(10) == []  # the next receive moves it instead of delivering it
    assert (queue.pending(), dlq.pending()) == (0, 1)
    (dead,) = dlq.receive(10)
    assert (dead.id, dead.body, dead.receive_count) == (poison.id, poison.body, MAX_RECEIVES + 1)  # the count carries over
    dlq.delete(dead.receipt)
    assert dlq.pending() == 0


def test_a_message_in_flight_when_the_process_died_is_delivered_after_restart(backend: Backend) -> None:
    queue, _ = backend.queues()
    queue.send([{"n": 1}])
    (lost,) = queue.receive(10)  # received by a server that then died
    backend.restart()
    queue, _ = backend.queues()
    assert queue.receive(10) == [] and queue.pending() == 1  # still invisible: its timeout runs on
    time.sleep(WAIT_OUT_VISIBILITY_S)
    (again,) = queue.receive(10)
    assert (again.id, again.receive_count) == (lost.id, 2)


def test_a_long_poll_returns_when_a_message_arrives(backend: Backend) -> None:
    queue, _ = backend.queues()
    threading.Timer(0.3, lambda: queue.send([{"n": 1}])).start()
    started = time.monotonic()
    got = queue.receive(10, wait_s=5)
    assert bodies(got) == [{"n": 1}] and time.monotonic() - started < 2
    queue.delete(got[0].receipt)
    started = time.monotonic()
    assert queue.receive(10, wait_s=1) == [] and 0.9 < time.monotonic() - started < 3


# -- a job across a crash -------------------------------------------------------------------------
LEASE = 60


class Crash(Exception):
    """The worker process dies here."""


def work(queue: Any, store: Any, now: int, runs: dict[int, int], crash: dict[int, str]) -> None:
    """One receive, handled as BatchService.process does (claim, run, settle, acknowledge);
    ``crash[index]`` names the point where the process dies while handling that request."""
    for message in queue.receive(10):
        body = json.loads(message.body)
        index = body["index"]
        if not store.claim("ws", body["job_id"], index, now, now + LEASE):
            if store.get_item("ws", body["job_id"], index).state == "running":
                queue.retry_later(message.receipt, 0)  # another delivery holds it: try again later
            else:
                queue.delete(message.receipt)  # settled already: a redelivery
            continue
        if crash.get(index) == "before running":
            raise Crash
        runs[index] = runs.get(index, 0) + 1
        item = store.get_item("ws", body["job_id"], index)
        store.settle("ws", body["job_id"], item.model_copy(update={"state": "succeeded", "response": {"n": index}}))
        if crash.get(index) == "before acknowledging":
            raise Crash
        queue.delete(message.receipt)


def test_a_job_resumes_after_a_crash_and_runs_each_request_once(backend: Backend) -> None:
    queue, _ = backend.queues()
    store = backend.batch_store()
    now = int(time.time())
    store.create_job("ws", BatchJob(id="batch_x", model="m", created_at=now, deadline=now + 3600, total_requests=3),
                     [BatchItem(index=n, body={"inputs": "hi"}) for n in range(3)])
    queue.send([{"ws": "ws", "job_id": "batch_x", "index": n} for n in range(3)])
    runs: dict[int, int] = {}
    with pytest.raises(Crash):  # receives all three; settles 0 but dies before acknowledging it, or running 1
        work(queue, store, now, runs, {0: "before acknowledging", 1: "before running"})
    assert runs == {0: 1}

    backend.restart()
    queue, _ = backend.queues()
    store = backend.batch_store()
    work(queue, store, now, runs, {})
    assert runs == {0: 1} and queue.pending() == 3  # all three still in flight with the dead process
    time.sleep(WAIT_OUT_VISIBILITY_S)
    # Redelivered (once the dead worker's lease on 1 is over too): 0 is settled, so acknowledged
    # without running; 1 is taken over and runs; 2 runs.
    work(queue, store, now + LEASE + 1, runs, {})
    assert runs == {0: 1, 1: 1, 2: 1} and queue.pending() == 0
    job = store.get_job("ws", "batch_x")
    assert (job.completed_requests, job.succeeded_requests) == (3, 3)


# -- SQLite only ------------------------------------------------------------------------------------
def test_sqlite_keeps_send_order_and_sends_atomically(tmp_path: Path) -> None:
    from agentsapi.adapters.sqlite.batch import BATCH_MIGRATIONS
    from agentsapi.adapters.sqlite.db import Database
    from agentsapi.adapters.sqlite.queue import SqliteQueue

    db = Database(tmp_path / "q.db", BATCH_MIGRATIONS)
    queue = SqliteQueue(db, "q", 30)
    queue.send([{"n": n} for n in range(15)])
    queue.send([{"n": n} for n in range(15, 20)])
    first = queue.receive(10)
    queue.retry_later(first[0].receipt, 0)  # a retried message goes back to its place, not the end
    assert [b["n"] for b in bodies(first + queue.receive(10) + queue.receive(10))] == [*range(10), 0, *range(10, 20)]
    with pytest.raises(TypeError):
        queue.send([{"n": 1}, {"not json": object()}])
    assert queue.pending() == 20  # the failed send added nothing
    other = SqliteQueue(db, "other", 30)
    assert other.receive(10) == [] and other.pending() == 0  # queues share a table, not messages
    queue.delete(first[1].receipt)
    other.delete(first[2].receipt)  # a receipt is only good on its own queue
    assert queue.pending() == 19


def test_sqlite_stale_receipts_do_nothing(tmp_path: Path) -> None:
    """A receiver whose delivery timed out and went to another cannot delete or delay the new one."""
    from agentsapi.adapters.sqlite.batch import BATCH_MIGRATIONS
    from agentsapi.adapters.sqlite.db import Database
    from agentsapi.adapters.sqlite.queue import SqliteQueue

    queue = SqliteQueue(Database(tmp_path / "q.db", BATCH_MIGRATIONS), "q", 0.2)
    queue.send([{"n": 1}])
    (old,) = queue.receive(1)
    time.sleep(0.3)
    (new,) = queue.receive(1)
    queue.delete(old.receipt)
    queue.retry_later(old.receipt, 0)
    assert queue.pending() == 1 and queue.receive(1) == []  # still in flight with its new receiver
    queue.delete(new.receipt)
    assert queue.pending() == 0


def test_sqlite_survives_a_killed_receiver(tmp_path: Path) -> None:
    """A real SIGKILL right after a receive commits: after the timeout the message is back."""
    from agentsapi.adapters.sqlite.batch import BATCH_MIGRATIONS
    from agentsapi.adapters.sqlite.db import Database
    from agentsapi.adapters.sqlite.queue import SqliteQueue

    path = tmp_path / "q.db"
    queue = SqliteQueue(Database(path, BATCH_MIGRATIONS), "q", 1)
    queue.send([{"n": 1}])
    child = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT / "layers")!r})
        from agentsapi.adapters.sqlite.batch import BATCH_MIGRATIONS
        from agentsapi.adapters.sqlite.db import Database
        from agentsapi.adapters.sqlite.queue import SqliteQueue
        got = SqliteQueue(Database({str(path)!r}, BATCH_MIGRATIONS), "q", 1).receive(1)
        assert len(got) == 1
        os.kill(os.getpid(), signal.SIGKILL)
    """)], timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert queue.receive(1) == [] and queue.pending() == 1
    time.sleep(1.2)
    (again,) = queue.receive(1)
    assert again.receive_count == 2 and json.loads(again.body) == {"n": 1}


def test_sqlite_restart_redelivers_in_flight_messages_at_once(tmp_path: Path) -> None:
    """The embedded server's start-up: deliveries to the dead process come back now, not after a
    visibility timeout sized for the longest run; their receive counts are kept."""
    from agentsapi.adapters.sqlite.batch import BATCH_MIGRATIONS
    from agentsapi.adapters.sqlite.db import Database
    from agentsapi.adapters.sqlite.queue import SqliteQueue

    db = Database(tmp_path / "q.db", BATCH_MIGRATIONS)
    queue, other = SqliteQueue(db, "q", 900), SqliteQueue(db, "other", 900)
    queue.send([{"n": n} for n in range(3)])
    other.send([{"n": 9}])
    received = queue.receive(2)
    other.receive(1)
    assert queue.release_in_flight() == 2
    again = queue.receive(10)
    assert sorted((json.loads(m.body)["n"], m.receive_count) for m in again) == [(0, 2), (1, 2), (2, 1)]
    assert {m.id for m in received} <= {m.id for m in again}
    assert other.receive(1) == []  # another queue's deliveries are its own business


def test_sqlite_restart_gives_abandoned_claims_back(tmp_path: Path) -> None:
    """The embedded server is the only worker on its DATA_DIR: at start-up every running claim is a
    dead process's, and is released so the redelivered message runs it now rather than after the lease."""
    from agentsapi.adapters.sqlite.batch import BATCH_MIGRATIONS, SqliteBatchStore
    from agentsapi.adapters.sqlite.db import Database

    store = SqliteBatchStore(Database(tmp_path / "d.db", BATCH_MIGRATIONS))
    now = int(time.time())
    store.create_job("ws", BatchJob(id="b", model="m", created_at=now, deadline=now + 60, total_requests=3),
                     [BatchItem(index=n) for n in range(3)])
    assert store.claim("ws", "b", 0, now, now + 900) and store.claim("ws", "b", 1, now, now + 900)
    store.settle("ws", "b", BatchItem(index=1, state="succeeded"))
    assert store.release_abandoned_claims() == 1
    assert [i.state for i in store.items("ws", "b")] == ["pending", "succeeded", "pending"]
    assert store.claim("ws", "b", 0, now, now + 900)
