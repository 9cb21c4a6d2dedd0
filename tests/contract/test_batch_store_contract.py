"""The BatchStore port's contract, held by DynamoDBBatchStore (moto) and SqliteBatchStore: the
conditional transitions that make each batch request run once, and exact counters."""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import pytest

from agentsapi.errors import Conflict, InvalidRequest
from agentsapi.models.batch import BatchItem, BatchJob
from tests.contract.conftest import Backend

NOW = 1_800_000_000
LEASE = 900


def new_job(store: Any, ws: str = "ws1", job_id: str = "batch_1", n: int = 3, created_at: int = NOW,
            failed: tuple[int, ...] = ()) -> BatchJob:
    items = [BatchItem(index=i, custom_id=f"r{i}", body={"inputs": f"q{i}"}) if i not in failed
             else BatchItem(index=i, state="failed", error="bad line") for i in range(n)]
    job = BatchJob(id=job_id, model="m", created_at=created_at, deadline=created_at + 3600, total_requests=n,
                   completed_requests=len(failed), failed_requests=len(failed), metadata={"k": "v"})
    store.create_job(ws, job, items)
    return job


def settled(item: BatchItem, ok: bool = True) -> BatchItem:
    if ok:
        return item.model_copy(update={"state": "succeeded", "response": {"outputs": [{"text": f"a{item.index}"}]}})
    return item.model_copy(update={"state": "failed", "error": "boom"})


@pytest.fixture
def store(backend: Backend) -> Any:
    return backend.batch_store()


def test_create_and_read_back(store: Any) -> None:
    job = new_job(store, n=4, failed=(2,))
    got = store.get_job("ws1", "batch_1")
    assert got == job and got.to_api()["object"] == "batch"
    assert (got.status, got.total_requests, got.completed_requests, got.failed_requests) == ("QUEUED", 4, 1, 1)
    assert [(i.index, i.state, i.custom_id) for i in store.items("ws1", "batch_1")] == [
        (0, "pending", "r0"), (1, "pending", "r1"), (2, "failed", None), (3, "pending", "r3")]
    assert store.get_item("ws1", "batch_1", 1) == BatchItem(index=1, custom_id="r1", body={"inputs": "q1"})
    assert store.get_item("ws1", "batch_1", 9) is None
    assert store.get_job("ws1", "batch_nope") is None
    assert store.get_job("ws2", "batch_1") is None and store.items("ws2", "batch_1") == []  # workspaces are apart
    assert store.get_item("ws2", "batch_1", 1) is None


def test_a_second_job_with_the_same_id_is_a_conflict(store: Any) -> None:
    new_job(store)
    store.mark_running("ws1", "batch_1", NOW)
    with pytest.raises(Conflict):
        new_job(store)
    assert store.get_job("ws1", "batch_1").status == "RUNNING"


def test_claims_leases_and_release(store: Any) -> None:
    new_job(store)
    assert store.claim("ws1", "batch_1", 0, NOW, NOW + LEASE) is True
    assert store.get_item("ws1", "batch_1", 0).state == "running"  # what a duplicate delivery looks at
    assert store.claim("ws1", "batch_1", 0, NOW + 1, NOW + 1 + LEASE) is False  # held
    assert store.claim("ws1", "batch_1", 0, NOW + LEASE, NOW + 2 * LEASE) is False  # held to the end of its lease
    assert store.claim("ws1", "batch_1", 0, NOW + LEASE + 1, NOW + 2 * LEASE) is True  # its worker died: taken over
    store.release("ws1", "batch_1", 0)
    assert store.get_item("ws1", "batch_1", 0).state == "pending"
    store.release("ws1", "batch_1", 0)  # releasing what is not running changes nothing
    assert store.claim("ws1", "batch_1", 0, NOW, NOW + LEASE) is True
    assert store.settle("ws1", "batch_1", settled(store.get_item("ws1", "batch_1", 0))) is True
    store.release("ws1", "batch_1", 0)
    assert store.get_item("ws1", "batch_1", 0).state == "succeeded"  # settled stays settled
    assert store.claim("ws1", "batch_1", 0, NOW + 10 * LEASE, NOW + 11 * LEASE) is False
    assert store.claim("ws1", "batch_1", 7, NOW, NOW + LEASE) is False  # no such request
    assert store.claim("ws2", "batch_1", 1, NOW, NOW + LEASE) is False  # nor in another workspace


def test_settle_once_with_the_outcome_and_counters(store: Any) -> None:
    new_job(store, n=3)
    item0, item1 = store.get_item("ws1", "batch_1", 0), store.get_item("ws1", "batch_1", 1)
    assert store.settle("ws1", "batch_1", settled(item0)) is False  # not claimed: nothing written
    assert store.get_job("ws1", "batch_1").completed_requests == 0
    store.claim("ws1", "batch_1", 0, NOW, NOW + LEASE)
    store.claim("ws1", "batch_1", 1, NOW, NOW + LEASE)
    assert store.settle("ws1", "batch_1", settled(item0)) is True
    assert store.settle("ws1", "batch_1", settled(item0)) is False  # a redelivery
    assert store.settle("ws1", "batch_1", settled(item1, ok=False)) is True
    job = store.get_job("ws1", "batch_1")
    assert (job.completed_requests, job.succeeded_requests, job.failed_requests) == (2, 1, 1)
    assert store.get_item("ws1", "batch_1", 0) == settled(item0)
    assert store.get_item("ws1", "batch_1", 1) == settled(item1, ok=False)
    assert store.get_item("ws1", "batch_1", 2).state == "pending"


def test_job_status_transitions(store: Any) -> None:
    new_job(store, job_id="batch_a")
    store.mark_running("ws1", "batch_a", NOW + 5)
    store.mark_running("ws1", "batch_a", NOW + 9)  # once
    job = store.get_job("ws1", "batch_a")
    assert (job.status, job.started_at) == ("RUNNING", NOW + 5)
    assert store.request_cancel("ws1", "batch_a") is True
    assert store.request_cancel("ws1", "batch_a") is False
    store.mark_running("ws1", "batch_a", NOW + 10)  # never back from a cancellation
    assert store.get_job("ws1", "batch_a").status == "CANCELLATION_REQUESTED"
    assert store.claim_finalization("ws1", "batch_a") is True
    assert store.claim_finalization("ws1", "batch_a") is False
    store.finish("ws1", "batch_a", "CANCELLED", NOW + 20, "file-out", None)
    job = store.get_job("ws1", "batch_a")
    assert (job.status, job.completed_at, job.output_file, job.error_file) == ("CANCELLED", NOW + 20, "file-out", None)
    assert store.request_cancel("ws1", "batch_a") is False  # finished

    new_job(store, job_id="batch_b")
    assert store.request_cancel("ws1", "batch_b") is True  # a queued job can be cancelled too
    new_job(store, job_id="batch_c")
    store.finish("ws1", "batch_c", "FAILED", NOW + 30, None, "file-err")
    job = store.get_job("ws1", "batch_c")
    assert (job.status, job.output_file, job.error_file, job.to_api()["completed_at"]) == ("FAILED", None, "file-err",
                                                                                             NOW + 30)


def test_listing_pages_newest_first_per_workspace(store: Any) -> None:
    created = [NOW + 30, NOW + 10, NOW + 20, NOW + 20, NOW + 5, NOW + 20, NOW + 40]
    for n, at in enumerate(created):
        new_job(store, job_id=f"batch_{n}", created_at=at, n=1)
    new_job(store, ws="ws2", job_id="batch_other", n=1)
    store.claim("ws1", "batch_2", 0, NOW, NOW + LEASE)
    store.settle("ws1", "batch_2", settled(store.get_item("ws1", "batch_2", 0)))
    expected = [f"batch_{n}" for n, _ in sorted(enumerate(created), key=lambda p: (p[1], f"batch_{p[0]}"), reverse=True)]
    seen: list[BatchJob] = []
    token = None
    first_token = None
    for _ in range(10):
        page = store.list_jobs("ws1", 3, token)
        assert len(page.items) <= 3
        seen.extend(page.items)
        token = page.next_token
        first_token = first_token or token
        if token is None:
            break
    assert [job.id for job in seen] == expected
    assert next(job for job in seen if job.id == "batch_2").completed_requests == 1  # current counters
    assert [job.id for job in store.list_jobs("ws2", 10, None).items] == ["batch_other"]
    assert store.list_jobs("ws3", 10, None).items == []
    for bad in ("garbage!", "e30=", first_token[:-4]):
        with pytest.raises(InvalidRequest):
            store.list_jobs("ws1", 3, bad)
    with pytest.raises(InvalidRequest):
        store.list_jobs("ws2", 3, first_token)  # only good for the listing that issued it


def _race(count: int, action: Any) -> list[Any]:
    """``action(n)`` from ``count`` threads released at once; their results."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(n: int) -> None:
        barrier.wait()
        results[n] = action(n)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_claims_exactly_one_wins(store: Any) -> None:
    new_job(store, n=10)
    for index in range(10):
        assert sorted(_race(2, lambda _n, i=index: store.claim("ws1", "batch_1", i, NOW, NOW + LEASE))) == [False, True]
    assert all(item.state == "running" for item in store.items("ws1", "batch_1"))
    # and two takeovers of one expired lease: one again
    assert sorted(_race(2, lambda _n: store.claim("ws1", "batch_1", 0, NOW + LEASE + 1, NOW + 2 * LEASE))) == [False, True]
    assert sorted(_race(4, lambda _n: store.claim_finalization("ws1", "batch_1"))) == [False, False, False, True]


def test_settle_exactly_once_under_concurrency(store: Any) -> None:
    new_job(store, n=40)
    for index in range(40):
        store.claim("ws1", "batch_1", index, NOW, NOW + LEASE)
    # Two deliveries of each of the first ten settle at once: one wins each.
    for index in range(10):
        item = store.get_item("ws1", "batch_1", index)
        assert sorted(_race(2, lambda n, it=item: store.settle("ws1", "batch_1", settled(it, ok=n == 0)))) == [False, True]
    # Four workers settle the other thirty, all at once: no update of the head is lost.
    rest = [store.get_item("ws1", "batch_1", index) for index in range(10, 40)]
    results = _race(4, lambda n: [store.settle("ws1", "batch_1", settled(it, ok=it.index % 3 != 0))
                                  for it in rest[n::4]])
    assert all(all(r) for r in results)
    items = store.items("ws1", "batch_1")
    job = store.get_job("ws1", "batch_1")
    succeeded = sum(item.state == "succeeded" for item in items)
    assert (job.completed_requests, job.succeeded_requests, job.failed_requests) == (40, succeeded, 40 - succeeded)
    assert all(item.state in ("succeeded", "failed") for item in items)


def test_counters_exact_after_1000_requests_and_no_slowdown(store: Any, backend: Backend) -> None:
    # moto deep-copies its table on every transaction (~50 ms a settle at this size): 1,000 on moto
    # cost 90 s of `make test` and test nothing more of our code than 100 do.
    total = 1000 if backend.kind == "sqlite" else 100
    new_job(store, n=total)
    # Another job's requests in the same store: a settle must not depend on how much is stored.
    new_job(store, job_id="batch_neighbour", n=500 if backend.kind == "sqlite" else 100)
    durations: list[float] = []
    for index in range(total):
        item = store.get_item("ws1", "batch_1", index)
        assert store.claim("ws1", "batch_1", index, NOW, NOW + LEASE)
        started = time.perf_counter()
        assert store.settle("ws1", "batch_1", settled(item, ok=index % 7 != 0))
        durations.append(time.perf_counter() - started)
    job = store.get_job("ws1", "batch_1")
    failed = len(range(0, total, 7))
    assert (job.completed_requests, job.succeeded_requests, job.failed_requests) == (total, total - failed, failed)
    assert len(store.items("ws1", "batch_1")) == total
    early, late = statistics.median(durations[:20]), statistics.median(durations[-20:])
    print(f"\n[{backend.kind}] settle: median {early * 1000:.3f} ms at requests 1-20, {late * 1000:.3f} ms at the "
          f"last 20 of {total} (x{late / early:.2f}); all {total} in {sum(durations):.2f} s")
    if backend.kind == "sqlite":  # moto copies its tables on every transaction; DynamoDB itself does not slow
        assert late < 3 * early + 0.001, (early, late)
