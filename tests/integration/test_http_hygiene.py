"""HTTP hygiene on the real front end (functions/conversations/web.py, what `make serve` and the
streaming function run): file names cannot inject headers or break downloads, and Content-Length
is checked before a byte of the body is read."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlparse

import pytest

from agentsapi.models.files import FileRecord
from tests.conftest import front_end
from tests.integration.test_files import BOUNDARY
from tests.integration.test_internal_fields import snapshot

AUTH = "Bearer test-key"


@pytest.fixture
def base(services: Any) -> Iterator[tuple[str, int]]:
    with front_end() as url:
        host, port = urlparse(url).netloc.split(":")
        yield host, int(port)


def stored_file(services: Any, filename: str, content: bytes) -> str:
    """A file whose name was stored before names were checked (uploads now refuse such names)."""
    import uuid

    ws = services.keys.authenticate(AUTH).workspace
    record = FileRecord(id=str(uuid.uuid4()), bytes=len(content), created_at=int(time.time()), filename=filename,
                        purpose="ocr", mimetype="text/plain")
    services.files.blobs.put(f"files/{ws}/{record.id}", content)
    services.store.put_file(ws, record)
    return record.id


def raw_request(base: tuple[str, int], head: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes, float]:
    """Send exactly ``head`` (request line and headers, no body) and read the answer until the
    server closes: (status, headers, body, seconds taken)."""
    started = time.monotonic()
    with socket.create_connection(base, timeout=timeout) as sock:
        sock.sendall(head.encode("latin-1"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    took = time.monotonic() - started
    header_block, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = header_block.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body, took


# -- file names ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("filename", [
    "report\r\nSet-Cookie: session=stolen\r\nX-Injected: 1.txt",  # header injection
    "报告 \"final\".pdf",                                          # not Latin-1, quotes
    "naïve\\résumé.txt",                                          # Latin-1, backslash
    "tab\there\x00nul.bin",                                       # control characters
])
def test_every_stored_file_downloads_with_an_rfc6266_disposition(services: Any, base: tuple[str, int],
                                                                 filename: str) -> None:
    file_id = stored_file(services, filename, b"payload")
    connection = http.client.HTTPConnection(*base, timeout=5)
    connection.request("GET", f"/v1/files/{file_id}/content", headers={"Authorization": AUTH})
    response = connection.getresponse()
    body = response.read()
    assert response.status == 200 and body == b"payload"
    names = [name.lower() for name, _ in response.getheaders()]
    assert "set-cookie" not in names and "x-injected" not in names
    (disposition,) = [v for n, v in response.getheaders() if n.lower() == "content-disposition"]
    fallback, encoded = disposition.split('; filename="', 1)[1].split('"; filename*=UTF-8\'\'')
    assert disposition.startswith("attachment; ")
    assert fallback.isascii() and not any(c in fallback for c in '"\\\r\n\0\t')
    assert unquote(encoded, errors="strict") == filename  # the exact name, percent-encoded UTF-8
    assert encoded == quote(filename, safe="!#$&+-.^_`|~")


def test_file_names_with_control_characters_are_refused(services: Any) -> None:
    from agentsapi.errors import InvalidRequest

    before = snapshot()
    for filename in ("a\rb.txt", "a\nb.txt", "a\x00b.txt", "a\x7fb.txt"):
        with pytest.raises(InvalidRequest) as refused:
            services.files.upload("ws", filename, b"x", "ocr")
        assert refused.value.param == "file" and "control character" in refused.value.message
    assert snapshot() == before


@pytest.mark.parametrize("encoded", ["evil%0D%0ASet-Cookie%3A%20x%3D1.txt", "nul%00.txt", "lf%0A.txt"])
def test_an_rfc2231_encoded_control_character_is_refused_at_upload(services: Any, base: tuple[str, int],
                                                                   encoded: str) -> None:
    before = snapshot()
    part = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename*=UTF-8''{encoded}\r\nContent-Type: text/plain\r\n\r\nx\r\n"
            f"--{BOUNDARY}--\r\n").encode()
    connection = http.client.HTTPConnection(*base, timeout=5)
    connection.request("POST", "/v1/files", body=part, headers={
        "Authorization": AUTH, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    response = connection.getresponse()
    body = json.loads(response.read())
    assert response.status == 400 and body["param"] == "file" and "control character" in body["message"]
    assert snapshot() == before


def test_signed_urls_carry_the_same_safe_disposition(api: Any, services: Any) -> None:
    file_id = stored_file(services, "evil\r\nX-Injected: 1.txt", b"x")
    code, answer, _ = api("GET", f"/v1/files/{file_id}/url")
    assert code == 200
    (disposition,) = parse_qs(urlparse(answer["url"]).query)["response-content-disposition"]
    assert "\r" not in disposition and "\n" not in disposition
    assert "filename*=UTF-8''evil%0D%0AX-Injected%3A%201.txt" in disposition


# -- Content-Length -----------------------------------------------------------------------------------

def head(path: str, *headers: str) -> str:
    return "".join([f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH}\r\n"
                    "Content-Type: application/json\r\n", *(h + "\r\n" for h in headers), "\r\n"])


@pytest.mark.parametrize(("headers", "status", "param"), [
    (["Content-Length: -1"], 400, "Content-Length"),
    (["Content-Length: abc"], 400, "Content-Length"),
    (["Content-Length: 1e3"], 400, "Content-Length"),
    (["Content-Length: "], 400, "Content-Length"),
    (["Content-Length: 10", "Content-Length: 20"], 400, "Content-Length"),
    (["Transfer-Encoding: chunked"], 411, "Content-Length"),
    (["Content-Length: 1000000000"], 413, "body"),
    (["Content-Length: " + "9" * 40], 413, "body"),
    (["Content-Length: 200001"], 413, "body"),  # the fixture's MAX_REQUEST_BYTES is 200000
])
def test_content_length_is_checked_before_the_body_is_read(base: tuple[str, int], headers: list[str], status: int,
                                                           param: str) -> None:
    """The body is never sent: an answer at all proves the server did not wait for it, and the
    connection is closed so unread bytes could never be taken for a next request."""
    before = snapshot()
    code, response_headers, body, took = raw_request(base, head("/v1/conversations", *headers))
    assert code == status and took < 2
    error = json.loads(body)
    assert error["object"] == "error" and error["type"] == "invalid_request_error" and error["param"] == param
    assert response_headers["content-type"] == "application/json" and response_headers["connection"] == "close"
    assert snapshot() == before


def test_the_limit_is_the_routes_own(base: tuple[str, int], services: Any) -> None:
    """Uploads and batches accept more than a conversation body; each route's limit is its handler's
    (an upload in an event: what one Lambda event carries; larger ones are staged or signed)."""
    from agentsapi.payloads import DIRECT_BODY_MAX_BYTES

    limit = min(services.files.max_bytes + 64 * 1024, DIRECT_BODY_MAX_BYTES)
    assert raw_request(base, head("/v1/files", f"Content-Length: {limit + 1}"))[0] == 413
    code, _, body, _ = raw_request(base, head("/v1/batch/jobs", "Content-Length: 1600001"))  # 8 x 200000, plus one
    assert code == 413 and "1600000" in json.loads(body)["message"]


def test_a_body_that_stops_arriving_does_not_pin_the_server(services: Any) -> None:
    from agentsapi.http.connections import ConnectionPolicy

    with front_end(policy=ConnectionPolicy(body_grace_s=0.5)) as url:
        host, port = urlparse(url).netloc.split(":")
        code, _, body, took = raw_request((host, int(port)),
                                          head("/v1/conversations", "Content-Length: 100") + '{"model": ')
    assert code == 408 and json.loads(body)["param"] == "body" and took < 3


def test_valid_requests_still_work_and_keep_the_connection(base: tuple[str, int]) -> None:
    connection = http.client.HTTPConnection(*base, timeout=5)
    for _ in range(2):  # the same keep-alive connection
        connection.request("POST", "/v1/conversations", body=json.dumps({"model": "m", "inputs": "hi"}),
                           headers={"Authorization": AUTH, "Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["object"] == "conversation.response"
    connection.request("GET", "/v1/conversations", headers={"Authorization": AUTH})  # no body, no Content-Length
    assert connection.getresponse().status == 200
