"""The storage quota's UsageLedger contract, run on both adapters: DynamoDB (moto) and SQLite (a real file)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentsapi.adapters.dynamodb_usage import DynamoDBUsageLedger
from agentsapi.adapters.sqlite.db import Database
from agentsapi.adapters.sqlite.store import STORE_MIGRATIONS
from agentsapi.adapters.sqlite.usage import USAGE_MIGRATION, SqliteUsageLedger
from agentsapi.errors import QuotaExceeded
from agentsapi.quota import FILES, SESSIONS, StorageQuota, UsageLedger
from tests.contract.backends import BACKENDS, TABLE, dynamodb_client


@pytest.fixture(params=BACKENDS)
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UsageLedger]:
    if request.param == "dynamodb":
        yield DynamoDBUsageLedger(dynamodb_client(request), TABLE)
        return
    db = Database(tmp_path / "data" / "agents.db", [*STORE_MIGRATIONS, USAGE_MIGRATION])
    yield SqliteUsageLedger(db)
    db.close()


def test_charges_count_per_kind_and_workspace_within_the_quota(ledger: UsageLedger) -> None:
    assert ledger.usage("team-a") == {FILES: 0, SESSIONS: 0}
    assert ledger.charge("team-a", FILES, 600, quota=1000)
    assert ledger.charge("team-a", SESSIONS, 400, quota=1000)  # exactly at the quota
    assert not ledger.charge("team-a", FILES, 1, quota=1000)  # the total is what the quota bounds
    assert ledger.usage("team-a") == {FILES: 600, SESSIONS: 400}
    assert ledger.charge("team-b", FILES, 1000, quota=1000)  # another workspace has its own
    assert not ledger.charge("team-c", FILES, 1001, quota=1000)  # a first charge over the quota too
    assert ledger.usage("team-c") == {FILES: 0, SESSIONS: 0}
    assert ledger.charge("team-a", FILES, 5000, quota=None)  # counted whatever the quota
    assert ledger.usage("team-a") == {FILES: 5600, SESSIONS: 400}


def test_credits_give_bytes_back_and_never_go_below_zero(ledger: UsageLedger) -> None:
    ledger.charge("team-a", FILES, 700, quota=1000)
    ledger.charge("team-a", SESSIONS, 300, quota=1000)
    ledger.credit("team-a", FILES, 200)
    assert ledger.usage("team-a") == {FILES: 500, SESSIONS: 300}
    assert ledger.charge("team-a", FILES, 200, quota=1000)  # room again
    ledger.credit("team-a", SESSIONS, 10_000)  # more than counted (a recount came in between)
    assert ledger.usage("team-a") == {FILES: 700, SESSIONS: 0}
    assert ledger.charge("team-a", SESSIONS, 300, quota=1000)  # the total followed the credit
    assert not ledger.charge("team-a", SESSIONS, 1, quota=1000)
    ledger.credit("nobody", FILES, 5)  # a workspace never charged: nothing to take off
    assert ledger.usage("nobody") == {FILES: 0, SESSIONS: 0}


def test_a_recount_replaces_the_counters_and_lists_the_workspace(ledger: UsageLedger) -> None:
    ledger.charge("team-a", FILES, 900, quota=1000)
    ledger.set_usage("team-a", {FILES: 100, SESSIONS: 50})
    ledger.set_usage("team-z", {FILES: 0, SESSIONS: 7})
    assert ledger.usage("team-a") == {FILES: 100, SESSIONS: 50}
    assert ledger.charge("team-a", FILES, 850, quota=1000)
    assert not ledger.charge("team-a", FILES, 1, quota=1000)
    assert sorted(ledger.workspaces()) == ["team-a", "team-z"]


def test_concurrent_charges_never_overshoot_the_quota(ledger: UsageLedger) -> None:
    granted: list[bool] = []
    lock = threading.Lock()

    def charge() -> None:
        ok = ledger.charge("team-a", FILES, 100, quota=1000)
        with lock:
            granted.append(ok)

    threads = [threading.Thread(target=charge) for _ in range(25)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert granted.count(True) == 10
    assert ledger.usage("team-a")[FILES] == 1000


def test_the_quota_names_itself_and_the_usage_when_it_refuses(ledger: UsageLedger) -> None:
    quota = StorageQuota(ledger, 1000)
    quota.charge("team-a", FILES, 800, "the file 'a.csv'")
    with pytest.raises(QuotaExceeded) as refused:
        quota.charge("team-a", SESSIONS, 300, "the interpreter's session state")
    error = refused.value
    assert error.status == 507 and error.error_type == "storage_quota_exceeded"
    assert error.details == {"quota": {"quota_bytes": 1000, "used_bytes": 800, "requested_bytes": 300}}
    assert "session state needs 300 bytes" in error.message and "holds 800 of its 1000-byte" in error.message
    assert quota.room("team-a") == 200
    assert StorageQuota(ledger, 0).room("team-a") is None  # 0: no limit, still counted
