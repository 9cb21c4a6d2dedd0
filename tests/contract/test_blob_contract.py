"""The BlobStore port's contract, held by both adapters: S3Blobs (moto) and FileBlobs (a real
directory). Tests marked file-only are about the file system itself (atomic renames, links,
paths) or about what moto does not check (presigned URL signatures and expiry; S3 does)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from agentsapi.adapters import file_blobs as file_blobs_module
from agentsapi.adapters.file_blobs import CHUNK_BYTES, FileBlobs, UnsafeKey, signing_key_at
from agentsapi.http.headers import content_disposition
from local.blob_route import serve_signed_blob

ROOT = Path(__file__).resolve().parents[2]
SIGNING_KEY = b"contract-test-signing-key-0123456789"
PUBLIC_URL = "http://127.0.0.1:8080"


@dataclass
class Harness:
    kind: str
    store: Any

    def download(self, url: str) -> tuple[int, dict[str, str], bytes]:
        if self.kind == "s3":
            import requests

            response = requests.get(url, timeout=10)  # moto answers presigned URLs in-process
            return response.status_code, dict(response.headers), response.content
        parts = urlsplit(url)
        assert url.startswith(PUBLIC_URL + "/_blobs/")
        status, headers, body = serve_signed_blob(self.store, parts.path, parts.query)
        return status, headers, b"".join(body)


@pytest.fixture(params=["s3", "file"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    if request.param == "s3":
        import boto3

        from agentsapi.adapters.s3_blobs import S3Blobs

        request.getfixturevalue("aws")
        yield Harness("s3", S3Blobs(boto3.client("s3"), "agents-api-test"))
    else:
        yield Harness("file", FileBlobs(tmp_path / "blobs", SIGNING_KEY, PUBLIC_URL))


@pytest.fixture
def files(tmp_path: Path) -> FileBlobs:
    return FileBlobs(tmp_path / "blobs", SIGNING_KEY, PUBLIC_URL)


# -- both adapters ----------------------------------------------------------------------------------
def test_put_get_overwrite_and_missing(blobs: Harness) -> None:
    store = blobs.store
    assert store.get("files/ws1/missing") is None
    store.put("files/ws1/a", b"first", "text/plain")
    store.put("files/ws1/empty", b"")
    store.put("sessions/ws1/conv/entry", bytes(range(256)) * 10)
    assert store.get("files/ws1/a") == b"first"
    assert store.get("files/ws1/empty") == b""
    assert store.get("sessions/ws1/conv/entry") == bytes(range(256)) * 10
    store.put("files/ws1/a", b"second")
    assert store.get("files/ws1/a") == b"second"
    assert store.get("files/ws2/a") is None  # another workspace's prefix


def test_age_counts_from_the_write_and_a_copy_is_a_new_write(blobs: Harness) -> None:
    store = blobs.store
    store.put("sessions/ws/c1/e1", b"state")
    assert store.get("sessions/ws/c1/e1", max_age_s=60) == b"state"
    time.sleep(2.1)  # S3 keeps LastModified in whole seconds
    assert store.get("sessions/ws/c1/e1", max_age_s=1.5) is None  # expired
    assert store.get("sessions/ws/c1/e1") == b"state"  # still there without a bound (lifecycle rules delete it)
    assert store.copy("sessions/ws/c1/e1", "sessions/ws/c2/e1", max_age_s=1.5) is False  # an expired source
    assert store.get("sessions/ws/c2/e1") is None
    assert store.copy("sessions/ws/c1/e1", "sessions/ws/c2/e1", max_age_s=60) is True
    assert store.get("sessions/ws/c2/e1", max_age_s=1.5) == b"state"  # the copy is young
    assert store.get("sessions/ws/c1/e1", max_age_s=1.5) is None  # the source did not get younger


def test_copy_is_independent_of_its_source(blobs: Harness) -> None:
    store = blobs.store
    assert store.copy("sessions/ws/none/e", "sessions/ws/c/e") is False
    assert store.get("sessions/ws/c/e") is None
    store.put("sessions/ws/a/e", b"v1")
    store.put("sessions/ws/b/e", b"old")
    assert store.copy("sessions/ws/a/e", "sessions/ws/b/e") is True  # replaces what was there
    store.put("sessions/ws/a/e", b"v2")
    store.delete("sessions/ws/a/e")
    assert store.get("sessions/ws/b/e") == b"v1"


def test_delete_is_quiet_and_prefix_delete_is_a_string_prefix(blobs: Harness) -> None:
    store = blobs.store
    store.delete("files/ws/never-there")
    keys = ["sessions/ws/c1/e1", "sessions/ws/c1/e2", "sessions/ws/c10/e1", "sessions/ws/c2/e1", "sessions/other/c1/e1",
            "files/ws/c1"]
    for key in keys:
        store.put(key, key.encode())
    store.delete("files/ws/c1")
    assert store.get("files/ws/c1") is None
    store.delete_prefix("sessions/ws/c1/")
    assert [store.get(k) is None for k in keys[:5]] == [True, True, False, False, False]
    store.delete_prefix("sessions/ws/c1")  # no slash: c10 starts with it too
    assert [store.get(k) is None for k in keys[:5]] == [True, True, True, False, False]
    store.delete_prefix("sessions/ws/nothing-here/")
    store.put("sessions/ws/c1/e1", b"again")  # a deleted prefix can be written again
    assert store.get("sessions/ws/c1/e1") == b"again"
    assert store.get("sessions/other/c1/e1") == b"sessions/other/c1/e1"


def test_prefix_delete_of_many_blobs(blobs: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    store = blobs.store
    if hasattr(store, "LISTING_PAGE"):  # S3 lists 1,000 keys a page: pages of 100 show the same on moto, 10x faster
        monkeypatch.setattr(store, "LISTING_PAGE", 100)
    count = getattr(store, "LISTING_PAGE", 1000) + 5  # more than one listing page
    for n in range(count):
        store.put(f"sessions/ws/big/{n:04d}", b"x")
    store.put("sessions/ws/bigger/0", b"y")
    assert store.delete_prefix("sessions/ws/big/") == count
    assert all(store.get(f"sessions/ws/big/{n:04d}") is None for n in (0, count - 6, count - 5, count - 1))
    assert store.get("sessions/ws/bigger/0") == b"y"


def test_signed_url_downloads_with_the_file_name(blobs: Harness) -> None:
    store = blobs.store
    content = os.urandom(3000)
    store.put("files/ws/f1", content, "application/pdf")
    name = 'résumé "final"\r\n.pdf'  # a stored name can hold anything: the header stays one safe line
    status, headers, body = blobs.download(store.signed_url("files/ws/f1", 3600, name))
    assert (status, body) == (200, content)
    assert {k.lower(): v for k, v in headers.items()}["content-disposition"] == content_disposition(name)
    store.delete("files/ws/f1")
    # A deleted blob: S3 answers 403 when the signer may not list the bucket (the functions' role), else
    # 404; FileBlobs says 404. Either way nothing is served.
    assert blobs.download(store.signed_url("files/ws/f1", 3600, "x.pdf"))[0] in (403, 404)


# -- the file system ----------------------------------------------------------------------------------
def test_signed_url_shape_and_verify(files: FileBlobs) -> None:
    files.put("files/ws/f1", b"data")
    url = files.signed_url("files/ws/f1", 60, "a b.txt")
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert url.startswith(f"{PUBLIC_URL}/_blobs/files/ws/f1?") and set(query) == {"expires", "signature", "filename"}
    assert int(query["expires"]) - time.time() == pytest.approx(60, abs=2)
    assert files.verify("files/ws/f1", query["expires"], query["signature"], "a b.txt")
    assert not files.verify("files/ws/f2", query["expires"], query["signature"], "a b.txt")
    status, headers, body = serve_signed_blob(files, parts.path, parts.query)
    assert (status, b"".join(body), headers["Content-Type"], headers["Content-Length"]) == (200, b"data", "text/plain", "4")


def test_signed_url_expiry_and_tampering(files: FileBlobs, monkeypatch: pytest.MonkeyPatch) -> None:
    files.put("files/ws/f1", b"secret one")
    files.put("files/ws/f2", b"secret two")
    url = urlsplit(files.signed_url("files/ws/f1", 60, "one.txt"))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}

    def status(path: str = url.path, **changes: str) -> int:
        return serve_signed_blob(files, path, urlencode({**query, **changes}))[0]

    assert status() == 200
    assert status("/_blobs/files/ws/f2") == 403  # another key under the same signature
    assert status(signature=query["signature"][:-1] + ("0" if query["signature"][-1] != "0" else "1")) == 403
    assert status(signature="") == 403
    assert status(expires=str(int(query["expires"]) + 3600)) == 403  # extended by hand
    assert status(expires="soon") == 403
    assert status(filename="one.html") == 403  # the name is signed too
    assert serve_signed_blob(files, url.path, f"expires={query['expires']}&signature={query['signature']}")[0] == 403
    assert serve_signed_blob(files, url.path, url.query + "&filename=two.txt")[0] == 403  # a repeated field
    assert serve_signed_blob(files, "/_blobs/files/ws/%ff", url.query)[0] == 403
    assert serve_signed_blob(files, "/_blobs/files/ws/../ws/f1", url.query)[0] == 403
    assert serve_signed_blob(files, "/elsewhere/files/ws/f1", url.query)[0] == 404
    assert FileBlobs(files.root, b"another-signing-key-0123456789", PUBLIC_URL).verify(
        "files/ws/f1", query["expires"], query["signature"], "one.txt") is False
    real_time = time.time
    monkeypatch.setattr(file_blobs_module, "time", type("Clock", (), {"time": staticmethod(lambda: real_time() + 61)}))
    assert status() == 403  # expired


def test_downloads_stream_in_chunks(files: FileBlobs) -> None:
    size = 48 * 1024 * 1024 + 123
    pattern = os.urandom(1 << 16)

    def chunks() -> Iterator[bytes]:
        left = size
        while left:
            piece = pattern[: min(left, len(pattern))]
            left -= len(piece)
            yield piece

    tracemalloc.start()
    try:
        files.put_stream("files/ws/big", chunks())
        url = urlsplit(files.signed_url("files/ws/big", 60, "big.bin"))
        status, headers, body = serve_signed_blob(files, url.path, url.query)
        assert (status, headers["Content-Length"]) == (200, str(size))
        seen, largest = 0, 0
        for chunk in body:
            assert chunk == (pattern * (CHUNK_BYTES // len(pattern) + 1))[: len(chunk)]
            seen += len(chunk)
            largest = max(largest, len(chunk))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seen == size and largest <= CHUNK_BYTES
    assert peak < 8 * CHUNK_BYTES, f"peak {peak} bytes: a download of {size} bytes must not be held whole"


def test_a_stopped_download_closes_its_file(files: FileBlobs) -> None:
    files.put("files/ws/f", b"x" * (3 * CHUNK_BYTES))
    reader = files.open("files/ws/f")
    assert reader is not None and reader.size == 3 * CHUNK_BYTES
    iterator = iter(reader)
    next(iterator)
    reader.close()
    assert reader.file.closed


def test_readers_never_see_a_partial_blob(files: FileBlobs) -> None:
    versions = [bytes([n]) * (2 * 1024 * 1024) for n in range(3)]
    files.put("files/ws/hot", versions[0])
    stop = threading.Event()
    seen: set[bytes] = set()
    bad: list[int] = []

    def read() -> None:
        while not stop.is_set():
            data = files.get("files/ws/hot")
            if data not in versions:
                bad.append(len(data or b""))
            else:
                seen.add(data[:1])

    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in readers:
        thread.start()
    for n in range(30):
        files.put("files/ws/hot", versions[n % 3])
    stop.set()
    for thread in readers:
        thread.join()
    assert not bad and len(seen) >= 2


def test_a_failed_write_leaves_the_old_blob_and_no_temporary_file(files: FileBlobs) -> None:
    files.put("files/ws/k", b"old")

    def failing() -> Iterator[bytes]:
        yield b"new-part-"
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        files.put_stream("files/ws/k", failing())
    assert files.get("files/ws/k") == b"old"
    assert sorted(p.name for p in (files.root / "files" / "ws").iterdir()) == ["k"]


def test_a_killed_writer_leaves_the_old_blob(files: FileBlobs, tmp_path: Path) -> None:
    files.put("files/ws/k", b"old")
    marker = tmp_path / "writing"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT / "layers")!r})
        from pathlib import Path
        from agentsapi.adapters.file_blobs import FileBlobs
        def chunks():
            yield b"n" * 1_000_000
            Path({str(marker)!r}).touch()
            time.sleep(60)
            yield b"never"
        FileBlobs({str(files.root)!r}, b"x" * 32, "http://x").put_stream("files/ws/k", chunks())
    """)])
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert time.monotonic() < deadline and child.poll() is None
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        child.kill()
    assert files.get("files/ws/k") == b"old"
    leftovers = [p.name for p in (files.root / "files" / "ws").iterdir() if p.name != "k"]
    assert all(name.startswith(".") for name in leftovers)  # an invisible temporary file at most
    files.delete_prefix("files/ws/")  # and a prefix delete clears it with the rest
    assert not (files.root / "files" / "ws").exists()


BAD_KEYS = ["", "/etc/passwd", "../outside", "files/../../outside", "files/./x", "files//x", "files/x/", "files/\0x",
            ".hidden", "files/ws/.tmp", "files/" + "x" * 256, "x" * 1025]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_refused_by_every_method(files: FileBlobs, key: str) -> None:
    files.put("files/ws/ok", b"ok")
    for call in (lambda: files.put(key, b"x"), lambda: files.get(key), lambda: files.delete(key),
                 lambda: files.copy(key, "files/ws/ok2"), lambda: files.copy("files/ws/ok", key),
                 lambda: files.signed_url(key, 60, "x")):
        with pytest.raises(UnsafeKey):
            call()
    assert not (files.root.parent / "outside").exists()
    assert files.get("files/ws/ok2") is None
    with pytest.raises(UnsafeKey):
        files.delete_prefix("../")
    with pytest.raises(UnsafeKey):
        files.delete_prefix("files/../")


def test_links_planted_under_the_root_are_never_followed(files: FileBlobs, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"host secret")
    (outside / "ws").mkdir()
    (outside / "ws" / "secret").write_bytes(b"host secret 2")
    files.put("files/real/x", b"x")
    (files.root / "files" / "linked").symlink_to(outside)  # a directory link
    (files.root / "sessions").symlink_to(outside)  # a top-level one
    (files.root / "files" / "real" / "secret").symlink_to(outside / "secret")  # a file link
    before = sorted((p.relative_to(outside), p.read_bytes() if p.is_file() else b"") for p in outside.rglob("*"))

    assert files.get("files/linked/secret") is None
    assert files.get("sessions/ws/secret") is None
    assert files.get("files/real/secret") is None
    assert files.open("files/real/secret") is None
    assert files.copy("files/real/secret", "files/real/copied") is False
    url = urlsplit(files.signed_url("files/real/secret", 60, "s"))
    assert serve_signed_blob(files, url.path, url.query)[0] == 404
    with pytest.raises(UnsafeKey):
        files.put("files/linked/new", b"planted")
    with pytest.raises(UnsafeKey):
        files.put("sessions/ws/new", b"planted")
    with pytest.raises(UnsafeKey):
        files.copy("files/real/x", "files/linked/secret")
    files.delete("files/linked/secret")
    files.delete("sessions/ws/secret")
    files.delete_prefix("files/linked/")
    files.delete_prefix("sessions/ws/")
    files.delete_prefix("sessions/")
    assert sorted((p.relative_to(outside), p.read_bytes() if p.is_file() else b"") for p in outside.rglob("*")) == before

    files.put("files/real/secret", b"mine")  # replaces the link itself, not its target
    assert not (files.root / "files" / "real" / "secret").is_symlink()
    assert files.get("files/real/secret") == b"mine" and (outside / "secret").read_bytes() == b"host secret"
    files.delete_prefix("files/")  # removes the directory link itself, nothing behind it
    assert not (files.root / "files" / "linked").exists() and (outside / "ws" / "secret").exists()
    assert (files.root / "sessions").is_symlink()  # not under the prefix: untouched


def test_a_fifo_is_not_a_blob(files: FileBlobs) -> None:
    files.put("files/ws/x", b"x")
    os.mkfifo(files.root / "files" / "ws" / "fifo")
    assert files.get("files/ws/fifo") is None  # and no hang waiting for a writer
    files.delete("files/ws/fifo")
    assert not (files.root / "files" / "ws" / "fifo").exists()


def test_the_signing_key_is_made_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "data" / "blob-signing.key"
    key = signing_key_at(path)
    assert len(key) == 32 and signing_key_at(path) == key and path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["blob-signing.key"]
    url = FileBlobs(tmp_path / "b", key, PUBLIC_URL).signed_url("files/ws/x", 60, "x")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert FileBlobs(tmp_path / "b", signing_key_at(path), PUBLIC_URL).verify(  # after a restart
        "files/ws/x", query["expires"], query["signature"], "x")
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="blob-signing.key"):
        signing_key_at(path)


def test_sizes_under_a_prefix_and_what_a_prefix_delete_removes(blobs: Harness) -> None:
    """The storage quota measures a workspace by its prefixes, and credits what a delete removed."""
    store = blobs.store
    store.put("sessions/ws-1/conv-a/e1", b"x" * 300)
    store.put("sessions/ws-1/conv-a/e2", b"y" * 200)
    store.put("sessions/ws-1/conv-b/e1", b"z" * 50)
    store.put("sessions/ws-10/conv-a/e1", b"w" * 7)  # a workspace whose name extends another's
    store.put("files/ws-1/f1", b"f" * 1000)
    assert store.total_size("sessions/ws-1/") == 550
    assert store.total_size("sessions/ws-10/") == 7
    assert store.total_size("files/ws-1/") == 1000
    assert store.total_size("files/nobody/") == 0
    assert store.delete_prefix("sessions/ws-1/conv-a/") == 500
    assert store.total_size("sessions/ws-1/") == 50
    assert store.delete_prefix("sessions/ws-1/conv-a/") == 0
    assert store.delete_prefix("sessions/ws-1/") == 50
    assert store.total_size("sessions/ws-10/") == 7
