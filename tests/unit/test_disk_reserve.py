"""The embedded store's disk reserve: writes stop before the file system is full, deletes never check."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsapi.adapters.disk_reserve import REQUEST_HEADROOM_BYTES, DiskReserve
from agentsapi.adapters.file_blobs import FileBlobs
from agentsapi.errors import InsufficientStorage


class FakeDisk(DiskReserve):
    def __init__(self, path: Path, reserve: int, free: int) -> None:
        super().__init__(path, reserve)
        self.free = free

    def free_bytes(self) -> int:
        return self.free


def test_a_write_that_would_eat_into_the_reserve_is_refused_with_507(tmp_path: Path) -> None:
    disk = FakeDisk(tmp_path, reserve=100, free=150)
    disk.check(50)
    with pytest.raises(InsufficientStorage) as refused:
        disk.check(51)
    assert refused.value.status == 507 and refused.value.error_type == "insufficient_storage"
    assert "150 bytes free, 100 kept in reserve" in refused.value.message
    with pytest.raises(InsufficientStorage):
        disk.check_request()  # a request needs its headroom on top
    FakeDisk(tmp_path, reserve=100, free=100 + REQUEST_HEADROOM_BYTES).check_request()
    FakeDisk(tmp_path, reserve=0, free=0).check(10**9)  # 0: no reserve


def test_blob_writes_stop_at_the_reserve_and_leave_nothing_while_deletes_go_on(tmp_path: Path) -> None:
    disk = FakeDisk(tmp_path, reserve=1000, free=5000)
    blobs = FileBlobs(tmp_path / "blobs", b"k" * 32, "http://127.0.0.1", reserve=disk)
    blobs.put("files/ws/a", b"x" * 3000)
    disk.free = 2000
    with pytest.raises(InsufficientStorage):
        blobs.put_stream("files/ws/b", iter([b"y" * 500, b"y" * 1100]))  # the second chunk would pass it
    assert blobs.get("files/ws/b") is None
    assert [p.name for p in (tmp_path / "blobs" / "files" / "ws").iterdir()] == ["a"]  # no temporary file left
    staged = blobs.stage()
    with pytest.raises(InsufficientStorage):
        staged.write(b"z" * 1500)
    staged.discard()
    disk.free = 0  # a full disk: deletes and reads still work
    assert blobs.get("files/ws/a") == b"x" * 3000
    blobs.delete("files/ws/a")
    assert blobs.get("files/ws/a") is None
