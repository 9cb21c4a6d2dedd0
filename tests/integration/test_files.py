"""The Files API through its handler, under moto: uploads, metadata, bytes, signed URLs, deletes."""

from __future__ import annotations

import base64
import time
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from local.apigw import invoke, make_event

BOUNDARY = "----agentsapi-test"


def upload(content: bytes, filename: str = "data.csv", purpose: str | None = "ocr", key: str = "test-key",
           content_type: str = "text/csv", **fields: str) -> tuple[int, Any]:
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
             f"Content-Type: {content_type}\r\n\r\n".encode() + content + b"\r\n"]
    form = {"purpose": purpose, **fields} if purpose else fields
    for name, value in form.items():
        parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    body = b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()
    event = make_event("POST", "/v1/files", {"authorization": f"Bearer {key}",
                                             "content-type": f"multipart/form-data; boundary={BOUNDARY}"},
                       "", base64.b64encode(body).decode())
    event["isBase64Encoded"] = True
    response = invoke("files", event)
    import json

    return response["statusCode"], json.loads(response["body"])


def test_upload_retrieve_list_download_url_delete(api: Any) -> None:
    code, record = upload(b"x,y\n1,2\n")
    assert code == 200 and record["object"] == "file" and record["bytes"] == 8 and record["filename"] == "data.csv"
    assert record["purpose"] == "ocr" and record["source"] == "upload" and len(record["id"]) == 36
    assert api("GET", f"/v1/files/{record['id']}")[1] == record
    assert [f["id"] for f in api("GET", "/v1/files")[1]["data"]] == [record["id"]]
    event = make_event("GET", f"/v1/files/{record['id']}/content", {"authorization": "Bearer test-key"})
    response = invoke("files", event)
    headers = response.get("multiValueHeaders") or {}
    assert headers["Content-Type"] == ["application/octet-stream"]
    assert base64.b64decode(response["body"]) == b"x,y\n1,2\n"
    code, url, _ = api("GET", f"/v1/files/{record['id']}/url", query="expiry=2")
    query = parse_qs(urlparse(url["url"]).query)
    expires_in = int(query["X-Amz-Expires"][0]) if "X-Amz-Expires" in query else int(query["Expires"][0]) - time.time()
    assert code == 200 and 7100 < expires_in <= 7200 and record["id"] in url["url"]
    assert api("GET", f"/v1/files/{record['id']}/url", query="expiry=500")[0] == 400
    code, deleted, _ = api("DELETE", f"/v1/files/{record['id']}")
    assert (code, deleted) == (200, {"id": record["id"], "object": "file", "deleted": True})
    assert api("GET", f"/v1/files/{record['id']}")[0] == 404


def test_oversized_upload_is_413_and_nothing_is_kept(api: Any, services: Any) -> None:
    services.files.max_bytes = 100
    code, body = upload(b"x" * 101)
    assert code == 413 and "limit" in body["message"]
    assert api("GET", "/v1/files")[1]["data"] == []


def test_bad_purpose_and_missing_file_field(api: Any) -> None:
    code, body = upload(b"x", purpose="anything")
    assert code == 400 and body["param"] == "purpose"
    code, body, _ = api("POST", "/v1/files", {"not": "multipart"})
    assert code == 415 and body["param"] == "Content-Type"


def test_other_workspace_cannot_see_files(api: Any) -> None:
    _, record = upload(b"secret")
    for path in (f"/v1/files/{record['id']}", f"/v1/files/{record['id']}/content", f"/v1/files/{record['id']}/url"):
        assert api("GET", path, key="someone-else")[0] == 404
    assert api("DELETE", f"/v1/files/{record['id']}", key="someone-else")[0] == 404
    assert api("GET", "/v1/files", key="someone-else")[1]["data"] == []


def test_a_file_chunk_must_name_an_existing_file(api: Any) -> None:
    code, body, _ = api("POST", "/v1/conversations", {"model": "m", "inputs": [
        {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "file", "file_id": "nope"}]}]})
    assert code == 404 and body["param"] == "file_id"


@pytest.mark.parametrize("page_size", [1])
def test_files_list_pages(api: Any, page_size: int) -> None:
    first = upload(b"1", filename="a.txt")[1]
    second = upload(b"2", filename="b.txt")[1]
    ids = [api("GET", "/v1/files", query=f"page={page}&page_size={page_size}")[1]["data"][0]["id"] for page in (0, 1)]
    assert sorted(ids) == sorted([first["id"], second["id"]])


def test_the_list_filters_by_name_purpose_type_source_and_counts_its_total(api: Any) -> None:
    """Each of the description's list parameters narrows the listing, and the total (on by
    default, as in Mistral's description) counts what the filters keep, not the page."""
    for name, purpose, content_type in (("sales-2025.csv", "ocr", "text/csv"), ("Sales-2026.csv", "batch", "text/csv"),
                                        ("notes.txt", "ocr", "text/plain")):
        assert upload(b"x\n", filename=name, purpose=purpose, content_type=content_type)[0] == 200

    def names(query: str) -> tuple[list[str], Any]:
        status, body, _ = api("GET", "/v1/files", query=query)
        assert status == 200, body
        return sorted(f["filename"] for f in body["data"]), body["total"]

    assert names("") == (["Sales-2026.csv", "notes.txt", "sales-2025.csv"], 3)
    assert names("search=SALES") == (["Sales-2026.csv", "sales-2025.csv"], 2)
    assert names("search=sales&purpose=ocr") == (["sales-2025.csv"], 1)
    assert names("mimetypes=text/plain") == (["notes.txt"], 1)
    assert names("source=upload&source=repository") == (["Sales-2026.csv", "notes.txt", "sales-2025.csv"], 3)
    assert names("source=mistral") == ([], 0)
    assert names("sample_type=instruct") == (["Sales-2026.csv", "notes.txt", "sales-2025.csv"], 3)
    assert names("sample_type=batch_result") == ([], 0)
    in_order = [f["filename"] for f in api("GET", "/v1/files")[1]["data"]]
    assert names("page_size=1&page=1") == (in_order[1:2], 3)  # the total is every match, the page one
    assert names("include_total=false")[1] is None


@pytest.mark.parametrize(("query", "param"), [
    ("include_total=maybe", "include_total"), ("source=ftp", "source"), ("sample_type=poem", "sample_type"),
])
def test_a_list_parameter_with_a_value_it_cannot_have_is_a_400_naming_it(api: Any, query: str, param: str) -> None:
    status, body, _ = api("GET", "/v1/files", query=query)
    assert status == 400 and body["param"] == param, body


def test_a_file_uploaded_with_an_expiry_says_when_and_is_deleted_once_it_passes(api: Any, services: Any,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from agentsapi.domain import files as files_module
    from agentsapi.domain.housekeeping import expire_files
    from agentsapi.quota import FILES

    code, short = upload(b"a,b\n", filename="short.csv", expiry="2")
    assert code == 200 and short["expires_at"] == short["created_at"] + 2 * 3600, short
    code, kept = upload(b"a,b\n", filename="kept.csv")
    assert code == 200 and kept["expires_at"] is None
    code, swept = upload(b"a,b\n", filename="swept.csv", expiry="1")
    ws = services.keys.authenticate("Bearer test-key").workspace
    used = services.quota.usage(ws).held[FILES]

    later = time.time() + 2 * 3600 + 1
    monkeypatch.setattr(files_module.time, "time", lambda: later)
    assert expire_files(services.files, services.storage.blobs) == 2  # the sweep (hourly locally, daily in AWS)
    assert api("GET", f"/v1/files/{short['id']}")[0] == 404
    assert [f["id"] for f in api("GET", "/v1/files")[1]["data"]] == [kept["id"]]
    assert services.storage.blobs.get(f"files/{ws}/{swept['id']}") is None  # the bytes too
    assert services.quota.usage(ws).held[FILES] == used - 8  # and their charge given back


def test_a_file_past_its_expiry_is_gone_from_reads_before_any_sweep(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from agentsapi.domain import files as files_module

    _, record = upload(b"x\n", expiry="1")
    later = time.time() + 3601
    monkeypatch.setattr(files_module.time, "time", lambda: later)
    assert api("GET", "/v1/files")[1]["data"] == []
    assert api("GET", f"/v1/files/{record['id']}/content")[0] == 404


@pytest.mark.parametrize(("fields", "param"), [
    ({"expiry": "0"}, "expiry"), ({"expiry": "soon"}, "expiry"), ({"expiry": str(24 * 366)}, "expiry"),
    ({"visibility": "user"}, "visibility"), ({"visibility": "public"}, "visibility"),
])
def test_an_expiry_or_visibility_that_cannot_be_honoured_is_a_400_naming_it(api: Any, fields: dict[str, str],
                                                                            param: str) -> None:
    code, body = upload(b"x\n", **fields)
    assert code == 400 and body["param"] == param, body
    assert api("GET", "/v1/files")[1]["data"] == []  # nothing stored
