"""Files at real sizes through the official SDK against `make serve`: uploads stream to disk, downloads
stream from it, and the server's memory stays far below the file's size. (benchmarks/large_files.py
runs the same at 512 MiB.)"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from mistralai.client import Mistral

SIZE = 96 * 1024 * 1024
MEMORY_BOUND = 40 * 1024 * 1024  # the server's peak may grow this much at most while moving SIZE bytes


def server_pid(server_url: str) -> int:
    """The `make serve` process listening on the URL's port (the e2e fixture started it)."""
    port = int(server_url.rsplit(":", 1)[1])
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":  # LISTEN
            inode = fields[9]
    assert inode, f"nothing listens on {port}"
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]" for fd in os.listdir(f"/proc/{pid}/fd")):
                return int(pid)
        except OSError:
            continue
    raise AssertionError("the server's process was not found")


def staged_files(pid: int) -> list[Path]:
    """What sits in the server's staging area (its DATA_DIR read from its environment)."""
    environ = dict(item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item)
    return list((Path(environ["DATA_DIR"]) / "blobs" / ".staging").glob("*"))


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("large") / "big.bin"
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(SIZE // (1 << 20)):
            chunk = os.urandom(1 << 20)
            digest.update(chunk)
            out.write(chunk)
    return path, digest.hexdigest()


def sha256_of(chunks: Any) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def test_sdk_upload_and_download_of_a_large_file_keep_server_memory_bounded(
        client: Mistral, server_url: str, big_file: tuple[Path, str]) -> None:
    path, digest = big_file
    pid = server_pid(server_url)
    before = peak_rss(pid)
    with path.open("rb") as content:
        uploaded = client.files.upload(file={"file_name": "big.bin", "content": content}, purpose="code_interpreter")
    assert uploaded.size_bytes == SIZE and client.files.retrieve(file_id=uploaded.id).filename == "big.bin"
    response = client.files.download(file_id=uploaded.id)
    assert response.headers["content-type"] == "application/octet-stream"
    assert int(response.headers["content-length"]) == SIZE and "x-accel-redirect" not in response.headers
    assert sha256_of(response.iter_bytes()) == digest
    grown = peak_rss(pid) - before
    assert grown < MEMORY_BOUND, f"the server's peak RSS grew by {grown / 2**20:.0f} MiB for a {SIZE >> 20} MiB file"
    assert staged_files(pid) == []
    client.files.delete(file_id=uploaded.id)


def test_an_upload_over_the_limit_is_refused_before_its_body_is_read(server_url: str) -> None:
    import json
    import socket

    body_size = 512 * 1024 * 1024 + 64 * 1024 + 1
    host, port = server_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer e2e-key\r\n"
                     f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {body_size}\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    error = json.loads(body)
    assert head.startswith(b"HTTP/1.1 413") and error["param"] == "file" and "536870912-byte limit" in error["message"]


def test_a_large_upload_cut_off_midway_leaves_nothing(server_url: str, client: Mistral) -> None:
    """A client that dies mid-body: no file, no staged bytes left behind."""
    import socket

    before = {f.id for f in client.files.list().data}
    head = (f"POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer e2e-key\r\n"
            f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {20 << 20}\r\n\r\n"
            '--b\r\nContent-Disposition: form-data; name="file"; filename="cut.bin"\r\n\r\n').encode()
    host, port = server_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head + b"x" * (8 << 20))
    deadline = time.monotonic() + 10
    while staged_files(server_pid(server_url)) and time.monotonic() < deadline:
        time.sleep(0.05)  # the server notices the hang-up on its next read
    assert staged_files(server_pid(server_url)) == []
    assert {f.id for f in client.files.list().data} == before


def test_signed_upload_through_the_local_blob_route(client: Mistral, server_url: str) -> None:
    """The flow AWS uses above API Gateway's limit, locally: announce, POST the form, then it is a file."""
    auth = {"Authorization": "Bearer e2e-key"}
    content = os.urandom(6 << 20)
    announced = httpx.post(f"{server_url}/v1/files/uploads", headers=auth,
                           json={"filename": "signed.bin", "purpose": "batch", "size": len(content)}, timeout=10).json()
    assert announced["url"].startswith(server_url) and announced["fields"]["key"].endswith(announced["id"])
    assert announced["id"] not in {f.id for f in client.files.list().data}  # pending: not a file yet
    posted = httpx.post(announced["url"], data=announced["fields"], files={"file": ("signed.bin", content)}, timeout=30)
    assert posted.status_code == 204, posted.text
    listed = {f.id: f for f in client.files.list().data}
    assert listed[announced["id"]].size_bytes == len(content) and listed[announced["id"]].purpose == "batch"
    assert client.files.download(file_id=announced["id"]).read() == content
    again = httpx.post(announced["url"], data=announced["fields"], files={"file": ("x", b"other")}, timeout=30)
    assert again.status_code == 400 and "EntityTooSmall" in again.json()["message"]  # exactly the announced size


def test_a_large_upload_without_a_valid_key_is_refused_before_its_body_is_read(tmp_path: Path) -> None:
    """Staging writes the body to disk as it arrives: a caller without a valid key is refused on
    its headers, before a byte is read (the client has not even sent the body here)."""
    import socket

    from local.launcher import Server

    server = Server({"DATA_DIR": str(tmp_path / "data"), "AUTH_MODE": "keys", "API_KEYS": "the-good-key",
                     "SANDBOX_MODE": "disabled"})
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
            conn.sendall(b"POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer not-a-key\r\n"
                         b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 209715200\r\n\r\n")
            started = time.monotonic()
            answer = conn.recv(4096).decode("latin-1")
        assert answer.startswith("HTTP/1.1 401") and time.monotonic() - started < 5, answer
        assert not list((tmp_path / "data").rglob(".staging/*"))
    finally:
        server.stop()
