"""A hostile review of the API's tenant separation (tenant A attacking tenant B): the denials of
service it found through resources every workspace shares, each fixed since. Reading, changing, deleting or enumerating B's agents, conversations,
entries, files, signed URLs and batch jobs with A's key all held (404 on every route, page
tokens bound to their workspace, signatures bound to the key).

Each test starts its own `make serve` on a fresh DATA_DIR.
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from tests.e2e.servers import A_KEY, B_KEY, client, code_turn
from tests.handshake import announce, cells_started, marker


def test_idle_connections_of_one_tenant_do_not_lock_the_others_out(serve) -> None:  # type: ignore[no-untyped-def]
    """The front end has no header/idle timeout and no connection cap: every connection holds a
    thread and a descriptor for as long as the client likes. 1,100 half-sent request lines (no
    key needed at all) exhaust a server started with the common 1,024-descriptor soft limit, and
    B's next request gets no answer (accept fails with EMFILE; or SQLite cannot open its file
    for B's thread: 500). With a higher limit the same attack only needs more sockets."""
    server = serve({"SANDBOX_MODE": "disabled"}, nofile=1024)
    with client(server, B_KEY, timeout=10) as b:
        assert b.get("/v1/agents").status_code == 200
    hogs = []
    try:
        for _ in range(1100):  # from another address than B's, as an attacker's host would be
            try:
                connection = socket.create_connection(("127.0.0.1", server.port), timeout=5,
                                                      source_address=("127.0.0.2", 0))
                connection.sendall(b"GET /v1/agents HTTP/1.1\r\n")  # never finished
            except OSError:
                continue  # refused at once beyond the cap per address: what the front end does now
            hogs.append(connection)
        time.sleep(1)
        with client(server, B_KEY, timeout=10) as b:
            try:
                status = b.get("/v1/agents").status_code
            except httpx.HTTPError as exc:
                pytest.fail(f"B's request failed while A held idle connections: {exc!r}")
        assert status == 200
    finally:
        for connection in hogs:
            connection.close()


def test_one_tenant_cannot_hold_every_sandbox_worker(serve) -> None:  # type: ignore[no-untyped-def]
    """The local worker pool has no per-workspace share: A runs SANDBOX_WORKERS slow cells at once
    (two requests, no rate limit needed) and B's code turn is a 503 after SANDBOX_WAIT_S, for as
    long as A keeps it up. README: 'a second worker keeps one tenant's long cell from holding up
    everyone else's' -- one tenant simply sends two."""
    server = serve({"SANDBOX_WORKERS": "2", "SANDBOX_WAIT_S": "3", "SANDBOX_TIMEOUT_S": "20"})
    with client(server, B_KEY) as b:
        solo = b.post("/v1/conversations", json=code_turn("print(6 * 7)"))
        assert solo.status_code == 200, f"precondition: the sandbox must work at all: {solo.text[:300]}"

    first, second = marker(), marker()

    def hog(name: str) -> None:
        with client(server, A_KEY) as a:
            a.post("/v1/conversations", json=code_turn(announce(name) + "import time\ntime.sleep(12)"))

    hogs = [threading.Thread(target=hog, args=(name,)) for name in (first, second)]
    for thread in hogs:
        thread.start()
    try:
        # One of A's cells runs; the other either runs too (a pool that lets one workspace hold
        # every worker) or is refused after SANDBOX_WAIT_S: only then does B ask.
        deadline = time.monotonic() + 30
        while True:
            running = sum(cells_started(name, server.process.pid) for name in (first, second))
            if running == 2 or (running == 1 and not all(thread.is_alive() for thread in hogs)):
                break
            assert time.monotonic() < deadline, f"A's cells: {running} running, neither both nor one refused"
            time.sleep(0.02)
        with client(server, B_KEY) as b:
            answer = b.post("/v1/conversations", json=code_turn("print(6 * 7)"))
        # A refusal after the status went out (a long wait sends headers early) is an error body.
        assert answer.status_code == 200 and answer.json().get("object") == "conversation.response", \
            f"B's code turn refused while A holds the pool: {answer.text[:200]}"
    finally:
        for thread in hogs:
            thread.join()


def test_a_batch_job_from_input_files_is_bounded_like_inline_requests(serve) -> None:  # type: ignore[no-untyped-def]
    """Inline requests stop at 10,000 (MAX_INLINE_REQUESTS), but ``input_files`` has no bound on
    its length, may repeat the same id, and the lines of every file are multiplied out in memory
    and inserted in ONE write transaction. Here a 10-line file named 2,000 times makes a
    20,000-request job. Measured: a 4 MiB file of ``{"body":{}}`` lines named 4 times (a 200-byte
    body) made 1.4 M requests, took 57 s and blocked every other workspace's writes for up to
    17.6 s (the database's writer lock has no timeout); the 8 MiB body allows ~200,000 repeats,
    i.e. billions of requests: the server runs out of memory."""
    server = serve({"SANDBOX_MODE": "disabled"})
    with client(server, A_KEY) as a:
        lines = b'{"body": {"inputs": "hi"}}\n' * 10
        uploaded = a.post("/v1/files", files={"file": ("in.jsonl", lines)}, data={"purpose": "batch"}).json()
        job = a.post("/v1/batch/jobs", json={"endpoint": "/v1/conversations", "model": "m",
                                             "input_files": [uploaded["id"]] * 2000})
    total = job.json().get("total_requests") if job.status_code == 200 else None
    assert job.status_code >= 400 or (total is not None and total <= 10_000), \
        f"accepted a job of {total} requests built from one 10-line file"
    with client(server, A_KEY) as a:  # one file over the limit is refused too, before anything is stored
        big = a.post("/v1/files", files={"file": ("big.jsonl", b'{"body": {"inputs": "hi"}}\n' * 10_001)},
                     data={"purpose": "batch"}).json()
        refused = a.post("/v1/batch/jobs", json={"endpoint": "/v1/conversations", "model": "m",
                                                 "input_files": [big["id"]]})
        assert refused.status_code == 400 and "input_files" in refused.text, refused.text[:300]
        assert a.get("/v1/batch/jobs").json()["total"] == 0


def test_one_tenants_queued_batch_does_not_starve_another_tenants_job(serve) -> None:  # type: ignore[no-untyped-def]
    """The batch queue was one FIFO for every workspace: behind A's 20,000 trivial requests B's
    one-request job waited 30 s. It now dispatches round robin per workspace."""
    server = serve({"SANDBOX_MODE": "disabled"})
    with client(server, A_KEY) as a, client(server, B_KEY) as b:
        for _ in range(2):
            queued = a.post("/v1/batch/jobs", json={"endpoint": "/v1/conversations", "model": "m",
                                                    "requests": [{"body": {"inputs": "hi"}}] * 10_000})
            assert queued.status_code == 200, queued.text[:200]
        started = time.monotonic()
        job = b.post("/v1/batch/jobs", json={"endpoint": "/v1/conversations", "model": "m",
                                             "requests": [{"custom_id": "b", "body": {"inputs": "hi"}}]}).json()
        status = job["status"]
        while status not in ("SUCCESS", "FAILED") and time.monotonic() - started < 8:
            time.sleep(0.25)
            status = b.get(f"/v1/batch/jobs/{job['id']}").json()["status"]
        assert status == "SUCCESS", f"B's one-request job still {status} after 8 s behind A's 20,000 requests"
