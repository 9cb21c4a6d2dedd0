"""Storage quotas per workspace: what one workspace may hold (files, outputs, session states).

The bytes a workspace holds are counted by a ``UsageLedger`` (SQLite locally, DynamoDB in AWS),
updated with every write and delete that changes them. A write first *charges* the ledger, which
is one atomic "add while the total stays within the quota" (concurrent writers can never
overshoot), then stores; if the store fails, the charge is given back. A delete stores first,
then *credits* what it removed. So the ledger never counts less than is stored, except for the
moment between a delete and its credit.

What the ledger cannot see is set right by ``recount``: it measures each workspace's prefixes in
the blob store and sets the counters to that (session states that expired and were removed by
the store's lifecycle, a server killed between a charge and its write). ``make serve`` recounts
at start-up; in AWS a scheduled function does (template.yaml).

Sizes are logical sizes, what a download returns and what S3 bills: a sparse file counts whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from .errors import QuotaExceeded

FILES = "files"
SESSIONS = "sessions"
KINDS = (FILES, SESSIONS)


class UsageLedger(Protocol):
    def charge(self, ws: str, kind: str, nbytes: int, quota: int | None) -> bool:
        """Atomically add ``nbytes`` to the workspace's ``kind`` and its total if the total stays
        at most ``quota`` (None: whatever it comes to); False, and nothing added, otherwise."""
        ...

    def credit(self, ws: str, kind: str, nbytes: int) -> None:
        """Take ``nbytes`` off (never below zero)."""
        ...

    def usage(self, ws: str) -> dict[str, int]:
        """Bytes held per kind (every kind in KINDS present, 0 if none)."""
        ...

    def set_usage(self, ws: str, held: dict[str, int]) -> None:
        """Replace the counters with measured figures (a recount)."""
        ...

    def workspaces(self) -> list[str]:
        """Every workspace with a counter."""
        ...


@dataclass(frozen=True)
class Usage:
    quota_bytes: int | None
    held: dict[str, int]

    @property
    def used_bytes(self) -> int:
        return sum(self.held.values())

    def to_api(self) -> dict[str, object]:
        remaining = None if self.quota_bytes is None else max(0, self.quota_bytes - self.used_bytes)
        return {"object": "workspace.usage", "storage": {
            "used_bytes": self.used_bytes, "quota_bytes": self.quota_bytes, "remaining_bytes": remaining,
            "files_bytes": self.held.get(FILES, 0), "sessions_bytes": self.held.get(SESSIONS, 0)}}


class StorageQuota:
    """A workspace's quota, enforced through the ledger. ``quota_bytes`` 0 means no limit (usage
    is still counted)."""

    def __init__(self, ledger: UsageLedger, quota_bytes: int) -> None:
        self.ledger = ledger
        self.quota_bytes = quota_bytes or None

    def usage(self, ws: str) -> Usage:
        return Usage(self.quota_bytes, self.ledger.usage(ws))

    def room(self, ws: str) -> int | None:
        """Bytes the workspace may still store now; None without a quota."""
        if self.quota_bytes is None:
            return None
        return max(0, self.quota_bytes - self.usage(ws).used_bytes)

    def charge(self, ws: str, kind: str, nbytes: int, what: str, param: str | None = None) -> None:
        """Count ``nbytes`` more, or raise QuotaExceeded (naming ``what``, the quota and the usage)
        and count nothing."""
        if nbytes <= 0:
            return
        if not self.ledger.charge(ws, kind, nbytes, self.quota_bytes):
            raise self.exceeded(ws, nbytes, what, param)

    def charge_anyway(self, ws: str, kind: str, nbytes: int) -> None:
        """Count bytes the service must store whatever the quota (a batch job's results)."""
        if nbytes > 0:
            self.ledger.charge(ws, kind, nbytes, None)

    def credit(self, ws: str, kind: str, nbytes: int) -> None:
        if nbytes > 0:
            self.ledger.credit(ws, kind, nbytes)

    def exceeded(self, ws: str, nbytes: int, what: str, param: str | None = None) -> QuotaExceeded:
        usage = self.usage(ws)
        return QuotaExceeded(f"{what} needs {nbytes} bytes, but this workspace holds {usage.used_bytes} of its "
                             f"{usage.quota_bytes}-byte storage quota; delete files or conversations to make room",
                             quota_bytes=usage.quota_bytes or 0, used_bytes=usage.used_bytes, requested_bytes=nbytes,
                             param=param)

    def recount(self, measure: Callable[[str], dict[str, int]], workspaces: Iterable[str]) -> int:
        """Set each workspace's counters to what ``measure(ws)`` finds stored; returns how many."""
        count = 0
        for ws in workspaces:
            self.ledger.set_usage(ws, measure(ws))
            count += 1
        return count
