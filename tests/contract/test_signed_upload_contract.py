"""Signed uploads, the same on both blob stores, driven over real HTTP: S3 (moto in server mode on
127.0.0.1, its presigned POST sent by httpx) and FileBlobs (the local front end's /_blobs/ route).

What both must do: a pending upload is never a file; once its bytes are POSTed, the next listing
(or retrieve) shows it, with the announced name and purpose and the exact bytes; the store's
notification records it too, any number of times, as one file; bytes outside the announced size
never become a file and are not kept. S3 itself refuses an out-of-range POST (moto does not check
the policy's content-length-range; the service's own check is what both share here)."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentsapi.adapters.sqlite.db import Database
from agentsapi.adapters.sqlite.store import STORE_MIGRATIONS, SqliteStore
from agentsapi.domain.files import FileService
from agentsapi.errors import NotFound

BUCKET = "signed-upload-test"
WS = "ws-a"


@dataclass
class Harness:
    kind: str
    files: FileService

    def stored_keys(self) -> list[str]:
        return [k for prefix in ("uploads/", "upload-intents/", "files/") for k in self.files.blobs.keys(prefix)]


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    from local.aws import fake_credentials

    fake_credentials()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(params=["s3", "file"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    database = Database(tmp_path / "agents.db", STORE_MIGRATIONS)
    store = SqliteStore(database)  # the store is not what differs here; the blob stores are
    if request.param == "s3":
        import boto3

        from agentsapi.adapters.s3_blobs import S3Blobs

        client = boto3.client("s3", endpoint_url=request.getfixturevalue("moto_server"), region_name="us-east-1")
        bucket = f"{BUCKET}-{os.urandom(4).hex()}"
        client.create_bucket(Bucket=bucket)
        yield Harness("s3", FileService(store, S3Blobs(client, bucket), max_bytes=1 << 20))
    else:
        yield from _local(store, tmp_path)
    database.close()


def _local(store: SqliteStore, tmp_path: Path) -> Iterator[Harness]:
    """FileBlobs behind a real local front end, whose /_blobs/ route notifies the service as S3 would."""
    from agentsapi.adapters.file_blobs import FileBlobs
    from local.apigw import web
    from local.serve import signed_blobs

    holder: dict[str, FileService] = {}
    server = web.FrontendServer(("127.0.0.1", 0), lambda path: None, body_limit=lambda path: 0,
                                raw_route=signed_blobs_late(holder))
    blobs = FileBlobs(tmp_path / "blobs", b"signed-upload-contract-key-0123", f"http://127.0.0.1:{server.server_address[1]}")
    files = FileService(store, blobs, max_bytes=1 << 20)
    holder["route"] = signed_blobs(blobs, notify=files.uploads.object_created)  # type: ignore[assignment]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Harness("file", files)
    server.shutdown()


def signed_blobs_late(holder: dict[str, Any]) -> Any:
    return lambda method, path, query: holder["route"](method, path, query)


def post(announced: dict[str, Any], content: bytes) -> httpx.Response:
    """What a client does with the answer of POST /v1/files/uploads: the fields, then the file, last."""
    return httpx.post(announced["url"], data=announced["fields"], files={"file": ("blob", content)}, timeout=30)


def listed(files: FileService) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in files.list(WS, 0, 100, None)["data"]}


def test_a_pending_upload_is_never_a_file_and_a_stored_one_always_is(harness: Harness) -> None:
    files = harness.files
    content = os.urandom(300_000)
    announced = files.uploads.create(WS, "data.parquet", "batch", len(content))
    assert announced["fields"]["key"] == f"uploads/{WS}/{announced['id']}" and announced["max_bytes"] == len(content)
    assert announced["url"].startswith("http://127.0.0.1:")  # a real HTTP POST: moto's server, or the front end
    assert announced["id"] not in listed(files)
    with pytest.raises(NotFound):
        files.get(WS, announced["id"])
    response = post(announced, content)
    assert response.status_code in (200, 201, 204), response.text
    record = listed(files)[announced["id"]]  # the listing completes it, notification or not
    assert (record["filename"], record["purpose"], record["bytes"]) == ("data.parquet", "batch", len(content))
    assert files.get(WS, announced["id"]) == record
    _, data = files.content(WS, announced["id"])
    assert hashlib.sha256(data).digest() == hashlib.sha256(content).digest()
    # The notification (again, late, or twice) changes nothing; nothing is left under uploads/.
    for _ in range(2):
        assert files.uploads.object_created(announced["fields"]["key"]).id == announced["id"]  # type: ignore[union-attr]
    assert list(listed(files)) == [announced["id"]]
    assert harness.stored_keys() == [f"files/{WS}/{announced['id']}"]


def test_the_notification_alone_records_it(harness: Harness) -> None:
    files = harness.files
    announced = files.uploads.create(WS, "rows.jsonl", "batch")
    assert post(announced, b'{"a": 1}\n{"a": 2}\n{"a": 3}').status_code in (200, 201, 204)
    record = files.uploads.object_created(announced["fields"]["key"])
    assert record is not None and record.num_lines == 3 and record.bytes == 26
    assert files.get(WS, announced["id"])["num_lines"] == 3


def test_bytes_outside_the_announced_size_never_become_a_file(harness: Harness) -> None:
    files = harness.files
    announced = files.uploads.create(WS, "exact.bin", None, 1000)
    response = post(announced, b"x" * 1001)
    if harness.kind == "file":  # S3 refuses it the same way; moto does not check the policy's range
        assert response.status_code == 400 and "EntityTooLarge" in response.json()["message"]
    assert announced["id"] not in listed(files)
    with pytest.raises(NotFound):
        files.get(WS, announced["id"])
    assert not [k for k in harness.stored_keys() if k.startswith(("uploads/", "files/"))]


def test_another_workspace_cannot_complete_or_see_it(harness: Harness) -> None:
    files = harness.files
    announced = files.uploads.create(WS, "mine.csv", "ocr")
    post(announced, b"a,b\n1,2\n")
    assert announced["id"] not in {f["id"] for f in files.list("ws-b", 0, 100, None)["data"]}
    with pytest.raises(NotFound):
        files.get("ws-b", announced["id"])
    assert announced["id"] in listed(files)


def test_announcements_are_checked_like_uploads(harness: Harness) -> None:
    from agentsapi.errors import InvalidRequest, PayloadTooLarge

    with pytest.raises(PayloadTooLarge) as too_large:
        harness.files.uploads.create(WS, "big.bin", None, (1 << 20) + 1)
    assert too_large.value.param == "size"
    with pytest.raises(InvalidRequest) as bad_purpose:
        harness.files.uploads.create(WS, "a.csv", "anything")
    assert bad_purpose.value.param == "purpose"
    assert harness.stored_keys() == []
