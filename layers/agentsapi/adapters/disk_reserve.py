"""A reserve of free disk under DATA_DIR: writes stop before the file system is full.

When the disk holding the embedded store fills up, SQLite cannot even delete (a delete writes
to the write-ahead log) and nobody can recover through the API. So every write that adds data
(a blob's chunks, a request that writes to the database) first checks that the file system keeps
``reserve_bytes`` free after it, and is refused with 507 ``insufficient_storage`` otherwise;
reads and deletes never check, and run on the reserve.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InsufficientStorage

# What one API request may write to the database beyond its blobs (entries, records): a request
# is refused up front unless this much more than the reserve is free.
REQUEST_HEADROOM_BYTES = 8 * 1024 * 1024


class DiskReserve:
    def __init__(self, path: Path | str, reserve_bytes: int) -> None:
        self.path = str(path)
        self.reserve_bytes = reserve_bytes

    def free_bytes(self) -> int:
        """What an unprivileged writer may still use (root's reserved blocks are not counted)."""
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize

    def check_request(self) -> None:
        """Before a request that writes: room for what it writes besides its blobs."""
        self.check(REQUEST_HEADROOM_BYTES)

    def check(self, incoming: int = 0) -> None:
        """Raise InsufficientStorage unless ``incoming`` more bytes leave the reserve untouched."""
        if self.reserve_bytes <= 0:
            return
        free = self.free_bytes()
        if free - incoming < self.reserve_bytes:
            raise InsufficientStorage(
                f"the server's storage is nearly full ({free} bytes free, {self.reserve_bytes} kept in reserve so "
                "that reads and deletes keep working); nothing was stored. Delete files or conversations, or ask "
                "the operator to free space (DATA_DIR_RESERVE_BYTES)")
