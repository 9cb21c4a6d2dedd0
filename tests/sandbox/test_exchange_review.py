"""Hostile review of the data path by reference (inputs and outputs through the exchange).

Each test states a behaviour a user relies on; each failed when the review found it, and the
fix is named in docs/security.md §4b.

The sandbox response is hostile input for the API side (docs/security.md §4b: "a forged response
naming another object"); the runner is same-uid with user code, so a response must never be able
to name anything outside its own execution's exchange, whatever produced it.
"""

from __future__ import annotations

import http.client
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from agentsapi.adapters.file_blobs import FileBlobs
from agentsapi.adapters.local_exchange import HostExchange
from agentsapi.sandbox.port import ExecutionRequest, ExecutionResult, SandboxFile, result_from_response

BUCKET = "review-bucket"


@pytest.fixture
def blobs(tmp_path: Path) -> FileBlobs:
    return FileBlobs(tmp_path / "blobs", os.urandom(32), "http://127.0.0.1")


@pytest.fixture
def s3() -> Iterator[tuple[Any, Any]]:
    """S3 (moto in server mode, on loopback) and the real S3Blobs, so presigned URLs really work."""
    import boto3
    from moto.server import ThreadedMotoServer

    from agentsapi.adapters.s3_blobs import S3Blobs

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test")  # noqa: S106 - moto's
        client.create_bucket(Bucket=BUCKET)
        yield client, S3Blobs(client, BUCKET)
    finally:
        server.stop()


def run(sandbox: Any, blobs: FileBlobs, code: str, **fields: Any) -> ExecutionResult:
    return sandbox.execute(ExecutionRequest(code=code, blobs=blobs, timeout_s=10, **fields))


# What a forged sandbox response looks like: no ref, but the API side's own internal fields.
def _forged(victim_file: str, victim_session: str) -> dict[str, Any]:
    return {"status": "ok", "outputs": [],
            "files": [{"name": "stolen.csv", "size": 1, "key": victim_file}],
            "session": {"key": victim_session, "bytes": 1},
            "exchange_prefix": "files/"}


def assert_names_only_its_own_exchange(result: ExecutionResult) -> None:
    """What the turn would adopt (files.adopt_blob / save_state move these keys) stays inside the
    execution's own exchange prefix, and that prefix is the execution's own."""
    prefix = result.exchange_prefix or ""
    named = [f.key for f in result.files if f.key] + ([result.session.key] if result.session and result.session.key else [])
    assert prefix.startswith("sandbox/") and all(key.startswith(prefix) for key in named), (prefix, named)


# -- 1. A forged response names any blob (local) -------------------------------------------------
def test_a_local_sandbox_response_never_names_a_blob_outside_its_own_execution(tmp_path: Path,
                                                                                blobs: FileBlobs) -> None:
    blobs.put("files/victim-ws/victim-file", b"victim's private data")
    blobs.put("sessions/victim-ws/conv/tool_exec_1", b"victim's session")
    root = tmp_path / "xchg"
    root.mkdir()
    exchange = HostExchange(str(root), blobs, None, 1 << 30)
    exchange.send(ExecutionRequest(code="", carry_session=True, blobs=blobs), {"code": ""})
    result = result_from_response(_forged("files/victim-ws/victim-file", "sessions/victim-ws/conv/tool_exec_1"))
    exchange.receive(result)
    exchange.close()
    assert_names_only_its_own_exchange(result)


# -- 1b. The same through S3 ---------------------------------------------------------------------
def test_an_s3_sandbox_response_never_names_an_object_outside_its_own_execution(s3: tuple[Any, Any]) -> None:
    from agentsapi.adapters.s3_exchange import S3Exchange

    client, store = s3
    store.put("files/victim-ws/victim-file", b"victim's private data")
    exchange = S3Exchange(store, client, 60, 1 << 30, resolve=False)
    exchange.send(ExecutionRequest(code="", carry_session=True, blobs=store), {"code": ""})
    result = result_from_response(_forged("files/victim-ws/victim-file", "sessions/victim-ws/conv/tool_exec_1"))
    exchange.receive(result)
    exchange.close()
    assert_names_only_its_own_exchange(result)


# -- 2. Locally, an output's recorded size is the response's, not what was taken ----------------
def test_the_size_recorded_for_a_local_output_is_the_size_taken(tmp_path: Path, blobs: FileBlobs) -> None:
    root = tmp_path / "xchg"
    root.mkdir()
    exchange = HostExchange(str(root), blobs, None, 1 << 30)
    exchange.send(ExecutionRequest(code="", carry_session=True, blobs=blobs), {"code": ""})
    (root / exchange.id / "out").mkdir()
    (root / exchange.id / "out" / "0").write_bytes(b"x" * 5000)
    result = result_from_response({"status": "ok", "files": [{"name": "big.bin", "size": 1, "ref": "out/0"}]})
    exchange.receive(result)
    exchange.close()
    [produced] = result.files
    assert produced.key and blobs.size(produced.key) == 5000
    assert produced.size == 5000, "the file record would say 1 byte for 5000 stored"


# -- 3. A file given to the conversation named like the runner's own files -----------------------
def test_a_file_named_like_the_runners_own_files_is_just_an_input(sandbox: Any, blobs: FileBlobs) -> None:
    blobs.put("files/ws/req", b"{}")
    result = run(sandbox, blobs, "print(open('.request.json').read())",
                 files=[SandboxFile(name=".request.json", key="files/ws/req", size=2)], carry_session=True)
    assert result.status == "ok", result.code_output()
    assert result.code_output() == "{}\n"


# -- 4. Outputs within the documented limits cost the session --------------------------------------
def test_outputs_within_the_documented_limits_keep_the_session(sandbox: Any, blobs: FileBlobs) -> None:
    code = ("block = b'\\x01' * (1 << 20)\nfor n in range(2):\n    with open(f'part{n}.bin', 'wb') as handle:\n"
            "        for _ in range(300):\n            handle.write(block)\ndel block, handle\nkept = 42\nprint('wrote')")
    first = run(sandbox, blobs, code, carry_session=True)
    assert first.status == "ok", first.code_output()
    assert sorted(f.name for f in first.files) == ["part0.bin", "part1.bin"]
    assert first.session is not None and first.session.key, first.code_output()
    second = run(sandbox, blobs, "print(kept)", carry_session=True, session_key=first.session.key)
    assert second.code_output() == "42\n"


# -- 5. S3: what is recorded and limited is what is kept ---------------------------------------------
class RecordedFiles:
    def __init__(self) -> None:
        self.saved: list[Any] = []

    def put_file(self, ws: str, record: Any) -> None:
        self.saved.append(record)


def test_an_s3_output_replaced_after_it_was_measured_is_recorded_and_limited_as_kept(s3: tuple[Any, Any]) -> None:
    """An output's PUT URL is still valid a while after the execution. Bytes put there after the
    API measured the output must never be kept under an older measurement: a file is measured at
    its own key, which no URL names, and recorded and limited by that."""
    from agentsapi.adapters.s3_exchange import S3Exchange
    from agentsapi.domain.files import FileService
    from agentsapi.errors import PayloadTooLarge

    client, store = s3
    exchange = S3Exchange(store, client, 60, 1 << 30, resolve=False)
    event = exchange.send(ExecutionRequest(code="", carry_session=True, blobs=store), {"code": ""})
    url = event["exchange"]["outputs"][0]  # type: ignore[index]

    def put(data: bytes) -> int:  # as the runner PUTs (exchange.UrlExchange): Host and Content-Length only
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        try:
            connection.request("PUT", f"{parts.path}?{parts.query}", body=data,
                               headers={"Content-Length": str(len(data))})
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    assert put(b"small") == 200  # what the runner delivers
    result = result_from_response({"status": "ok", "files": [{"name": "o.bin", "size": 5, "ref": "out/0"}]})
    exchange.receive(result)
    exchange.close()
    [produced] = result.files
    assert produced.size == 5 and produced.key
    records = RecordedFiles()
    files = FileService(records, store, max_bytes=1024 * 1024)  # type: ignore[arg-type]
    assert put(b"y" * (2 * 1024 * 1024)) == 200  # after the API measured it: over the file limit
    with pytest.raises(PayloadTooLarge):
        files.adopt_blob("ws", "o.bin", produced.key)
    assert store.keys("files/ws/") == [] and records.saved == []  # refused, and nothing left behind
    assert put(b"z" * 1000) == 200  # within the limit: recorded as the 1000 bytes kept, not 5
    record = files.adopt_blob("ws", "o.bin", produced.key)
    assert record.bytes == 1000 == store.size(f"files/ws/{record.id}") and records.saved == [record]
