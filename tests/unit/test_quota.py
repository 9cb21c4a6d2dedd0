"""The storage quota's arithmetic, on an in-memory ledger (the ledgers themselves: tests/contract)."""

from __future__ import annotations

import dataclasses

import pytest

from agentsapi.errors import QuotaExceeded
from agentsapi.quota import FILES, SESSIONS, StorageQuota, Usage


class Ledger:
    """What a UsageLedger promises, in a dict, with the calls it received."""

    def __init__(self) -> None:
        self.held: dict[str, dict[str, int]] = {}
        self.calls: list[tuple[str, ...]] = []

    def charge(self, ws: str, kind: str, nbytes: int, quota: int | None) -> bool:
        self.calls.append(("charge", ws, kind, str(nbytes)))
        held = self.held.setdefault(ws, {FILES: 0, SESSIONS: 0})
        if quota is not None and sum(held.values()) + nbytes > quota:
            return False
        held[kind] += nbytes
        return True

    def credit(self, ws: str, kind: str, nbytes: int) -> None:
        self.calls.append(("credit", ws, kind, str(nbytes)))
        held = self.held.setdefault(ws, {FILES: 0, SESSIONS: 0})
        held[kind] = max(0, held[kind] - nbytes)

    def usage(self, ws: str) -> dict[str, int]:
        return dict(self.held.get(ws, {FILES: 0, SESSIONS: 0}))

    def set_usage(self, ws: str, held: dict[str, int]) -> None:
        self.held[ws] = dict(held)

    def workspaces(self) -> list[str]:
        return sorted(self.held)


def test_one_byte_counts_and_nothing_is_asked_of_the_ledger_for_none() -> None:
    ledger = Ledger()
    quota = StorageQuota(ledger, 10)
    quota.charge("ws", FILES, 0, "nothing")
    quota.credit("ws", FILES, 0)
    quota.charge_anyway("ws", FILES, 0)
    assert ledger.calls == []
    quota.charge("ws", FILES, 1, "a byte")
    quota.charge_anyway("ws", SESSIONS, 1)
    assert quota.usage("ws").held == {FILES: 1, SESSIONS: 1}
    quota.credit("ws", FILES, 1)
    assert quota.usage("ws").held == {FILES: 0, SESSIONS: 1}
    with pytest.raises(QuotaExceeded) as refused:
        quota.charge("ws", FILES, 10, "ten bytes", param="size")
    assert refused.value.message == ("ten bytes needs 10 bytes, but this workspace holds 1 of its 10-byte storage quota; "
                                     "delete files or conversations to make room")
    assert refused.value.param == "size" and refused.value.details == {
        "quota": {"quota_bytes": 10, "used_bytes": 1, "requested_bytes": 10}}


def test_room_and_remaining_never_go_below_zero() -> None:
    ledger = Ledger()
    quota = StorageQuota(ledger, 100)
    assert quota.room("ws") == 100
    ledger.set_usage("ws", {FILES: 100, SESSIONS: 0})
    assert quota.room("ws") == 0
    ledger.set_usage("ws", {FILES: 150, SESSIONS: 7})  # over (set by a recount, or charged anyway)
    assert quota.room("ws") == 0
    assert quota.usage("ws").to_api() == {"object": "workspace.usage", "storage": {
        "used_bytes": 157, "quota_bytes": 100, "remaining_bytes": 0, "files_bytes": 150, "sessions_bytes": 7}}
    ledger.set_usage("ws", {FILES: 30, SESSIONS: 20})
    assert quota.usage("ws").to_api()["storage"]["remaining_bytes"] == 50
    assert StorageQuota(ledger, 0).room("ws") is None


def test_usage_reads_missing_kinds_as_nothing_and_is_a_value() -> None:
    usage = Usage(None, {})
    assert usage.used_bytes == 0
    assert usage.to_api() == {"object": "workspace.usage", "storage": {
        "used_bytes": 0, "quota_bytes": None, "remaining_bytes": None, "files_bytes": 0, "sessions_bytes": 0}}
    with pytest.raises(dataclasses.FrozenInstanceError):
        usage.quota_bytes = 5  # type: ignore[misc]


def test_a_recount_sets_each_workspace_and_says_how_many() -> None:
    ledger = Ledger()
    quota = StorageQuota(ledger, 100)
    measured = {"a": {FILES: 5, SESSIONS: 1}, "b": {FILES: 0, SESSIONS: 9}, "c": {FILES: 2, SESSIONS: 0}}
    assert quota.recount(lambda ws: measured[ws], ["a", "b", "c"]) == 3
    assert {ws: ledger.usage(ws) for ws in "abc"} == measured
    assert quota.recount(lambda ws: measured[ws], []) == 0
