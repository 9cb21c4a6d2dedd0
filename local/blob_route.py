"""Locally, S3's presigned GET: ``/_blobs/<key>?expires=&filename=&signature=`` answered from FileBlobs;
and S3's presigned POST: a multipart form (``key``, ``policy``, ``signature``, then ``file``) to
``/_blobs/``, streamed to a staging file and renamed onto the key only when whole and in bounds.

Mounted by the local front end in front of the API routes; no API key is involved, the signature
is the authorization (as with S3). Statuses follow S3: 403 for a bad or expired signature (before
anything about the key is revealed), 404 for a validly signed key that holds nothing. The body
streams in chunks; whoever writes it calls ``close()`` on it if it stops early.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, unquote

from agentsapi.adapters.file_blobs import SIGNED_PATH, FileBlobs, UnsafeKey, key_parts
from agentsapi.errors import ApiError, InvalidRequest
from agentsapi.http.headers import content_disposition
from local.multipart_stream import boundary_of, receive_form

Answer = tuple[int, dict[str, str], Iterable[bytes]]


def _error(status: int, message: str) -> Answer:
    body = json.dumps({"object": "error", "message": message}).encode()
    return status, {"Content-Type": "application/json", "Content-Length": str(len(body))}, [body]


def _single(params: Mapping[str, list[str]], name: str) -> str | None:
    values = params.get(name) or []
    return values[0] if len(values) == 1 else None  # a repeated field is never guessed at


def serve_signed_blob(blobs: FileBlobs, path: str, query: str) -> Answer:
    """The answer to ``GET path?query`` (path as the request line has it, still percent-encoded)."""
    if not path.startswith(SIGNED_PATH):
        return _error(404, "not a blob URL")
    params = parse_qs(query, keep_blank_values=True)
    expires, signature, filename = (_single(params, name) for name in ("expires", "signature", "filename"))
    if expires is None or signature is None or filename is None:
        return _error(403, "the URL is not signed")
    try:
        key = unquote(path[len(SIGNED_PATH):], errors="strict")
        key_parts(key)
    except (UnsafeKey, UnicodeDecodeError):
        return _error(403, "the signature does not match")  # no key like this is ever signed
    if not blobs.verify(key, expires, signature, filename):
        return _error(403, "the signature does not match, or the URL has expired")
    reader = blobs.open(key)
    if reader is None:
        return _error(404, "no such blob")
    return 200, {
        "Content-Type": blobs.content_type(filename),
        "Content-Length": str(reader.size),
        "Content-Disposition": content_disposition(filename),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
    }, reader


class SignatureRefused(ApiError):
    status = 403
    error_type = "authentication_error"


def receive_signed_post(blobs: FileBlobs, body: Any, notify: Callable[[str], object] | None = None) -> Answer:
    """A presigned POST, as S3 answers it: 403 for a bad or expired policy (before a byte of the file
    is stored), 400 ``EntityTooLarge``/``EntityTooSmall`` outside its size range, else 204 and the
    object at the policy's key; then ``notify(key)``, as S3 notifies ObjectCreated. The file part
    streams to a staging file and is renamed onto the key only when whole and within bounds."""
    boundary = boundary_of(body.headers.get("content-type") or "")
    if boundary is None:
        raise InvalidRequest("POST a multipart/form-data form (key, policy, signature, then file)", param="file")
    policy: dict[str, Any] = {}

    def check(fields: dict[str, str]) -> int:
        found = blobs.verify_post(fields)
        if found is None:
            raise SignatureRefused("the policy's signature does not match, or it has expired", param="policy")
        policy.update(found)
        return int(found["max"])

    def too_large() -> ApiError:
        return InvalidRequest(f"EntityTooLarge: the file is over the policy's {policy.get('max')} bytes", param="file")

    form = receive_form(body, boundary, blobs, int(body.length), too_large, before_file=check)
    if form.file is None:
        raise InvalidRequest("the form has no 'file' field (it must come last)", param="file")
    try:
        if form.file.size < int(policy["min"]):
            raise InvalidRequest(f"EntityTooSmall: the file is under the policy's {policy['min']} bytes", param="file")
        blobs.adopt(form.file.token, str(policy["key"]))
    finally:
        form.file.discard()  # quiet once adopted
    if notify is not None:
        notify(str(policy["key"]))
    return 204, {}, []
