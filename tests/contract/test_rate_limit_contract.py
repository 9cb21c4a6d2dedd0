"""The rate limiter's WindowCounter contract, run on both adapters: DynamoDB (moto) and SQLite (a real file)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentsapi.adapters.dynamodb_ratelimit import DynamoDBWindowCounter
from agentsapi.adapters.sqlite.ratelimit import SqliteWindowCounter
from agentsapi.errors import RateLimited
from agentsapi.ratelimit import RateLimiter, WindowCounter
from tests.contract.backends import BACKENDS, TABLE, adapter_on

START = 1_000_020.0  # 0 s into a window (1_000_020 is a multiple of 60)


@pytest.fixture(params=BACKENDS)
def counter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WindowCounter]:
    yield from adapter_on(request, tmp_path, lambda client: DynamoDBWindowCounter(client, TABLE), SqliteWindowCounter)


def limiter(counter: WindowCounter, now: list[float], default: int = 5) -> RateLimiter:
    return RateLimiter(counter, default, clock=lambda: now[0])


def test_the_allowance_is_counted_per_workspace_then_refused_with_retry_after(counter: WindowCounter) -> None:
    now = [START + 15]
    limit = limiter(counter, now)
    for _ in range(5):
        limit.check("team-a")
    with pytest.raises(RateLimited) as caught:
        limit.check("team-a")
    assert caught.value.status == 429 and caught.value.headers == {"Retry-After": "45"}
    assert caught.value.message == "Rate limit exceeded: 5 requests per minute for this workspace; retry in 45 s"
    limit.check("team-b")  # another workspace has its own allowance
    now[0] = START + 59.9
    with pytest.raises(RateLimited) as caught:
        limit.check("team-a")
    assert caught.value.retry_after_s == 1  # never 0: a client would retry at once


def test_rate_limit_window_resets(counter: WindowCounter) -> None:
    now = [1_000_040.0]  # 20 s into a window
    limit = limiter(counter, now)
    for _ in range(5):
        limit.check("team-d")
    with pytest.raises(RateLimited) as caught:
        limit.check("team-d")
    assert caught.value.retry_after_s == 40
    now[0] += 40
    limit.check("team-d")


def test_a_keys_own_limit_wins_and_zero_means_unlimited(counter: WindowCounter) -> None:
    now = [START]
    limit = limiter(counter, now, default=0)
    for _ in range(50):
        limit.check("team-a")  # no default limit: nothing is counted or refused
    limit.check("team-a", per_minute=2)
    limit.check("team-a", per_minute=2)
    with pytest.raises(RateLimited, match="2 requests per minute"):
        limit.check("team-a", per_minute=2)
    limit.check("team-a", per_minute=3)  # a higher limit in the same window allows what is left of it
    with pytest.raises(RateLimited):
        limit.check("team-a", per_minute=3)


def test_refused_requests_do_not_count(counter: WindowCounter) -> None:
    assert [counter.count("team-a", 60, 2, 360) for _ in range(4)] == [True, True, False, False]
    assert counter.count("team-a", 60, 3, 360) is True  # had refusals counted, this would be refused too


def test_concurrent_requests_never_overshoot_the_limit(counter: WindowCounter) -> None:
    threads, each, limit = 6, 8, 20
    allowed: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def hammer() -> None:
        barrier.wait()
        for _ in range(each):
            result = counter.count("team-a", 120, limit, 420)
            with lock:
                allowed.append(result)

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert len(allowed) == threads * each and allowed.count(True) == limit
