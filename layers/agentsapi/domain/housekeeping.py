"""Housekeeping of stored bytes: the storage quota's recount, session states past their TTL, and
files past the expiry their upload asked for (reads also delete those they meet).

In AWS the bucket's lifecycle rules remove session states after ``SessionTtlDays`` and a
scheduled function recounts; on one machine ``make serve`` recounts at start-up and expires
session states itself, every hour (nothing else would ever remove them).
"""

from __future__ import annotations

from ..blobs import BlobStore
from ..quota import FILES, KINDS, SESSIONS, StorageQuota
from .files import FileService

SESSIONS_PREFIX = "sessions/"


def _workspaces_under(blobs: BlobStore, kind: str) -> set[str]:
    return {key.split("/", 2)[1] for key in blobs.keys(f"{kind}/") if key.count("/") >= 2}


def measure(blobs: BlobStore, ws: str) -> dict[str, int]:
    """What the workspace holds, as stored: its files and its session states."""
    return {kind: blobs.total_size(f"{kind}/{ws}/") for kind in KINDS}


def recount_usage(quota: StorageQuota, blobs: BlobStore) -> int:
    """Set every workspace's counters to what is stored (those with a counter, and those with
    bytes stored but no counter yet: data from before quotas). Returns how many."""
    known = set(quota.ledger.workspaces()) | _workspaces_under(blobs, FILES) | _workspaces_under(blobs, SESSIONS)
    return quota.recount(lambda ws: measure(blobs, ws), sorted(known))


def expire_files(files: FileService, blobs: BlobStore) -> int:
    """Delete every workspace's files past the expiry their upload asked for. Returns how many."""
    return sum(files.expire(ws) for ws in sorted(_workspaces_under(blobs, FILES)))


def expire_sessions(blobs: BlobStore, quota: StorageQuota, ttl_s: float) -> int:
    """Remove session states older than ``ttl_s`` (no turn loads them any more), giving their
    bytes back to each workspace's quota. Returns the bytes removed."""
    removed = 0
    for key in blobs.keys(SESSIONS_PREFIX):
        size = blobs.size(key)
        if size is None or blobs.size(key, max_age_s=ttl_s) is not None:
            continue  # gone meanwhile, or still fresh
        blobs.delete(key)
        quota.credit(key.split("/", 2)[1], SESSIONS, size)
        removed += size
    return removed
