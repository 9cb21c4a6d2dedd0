"""Large `POST /v1/files` bodies, locally: streamed to a staging file, never into the event.

The front end used to read an upload whole, base64 it into the API Gateway event, and the handler
parsed it with the email parser: about four times the file in memory. Above STAGE_ABOVE_BYTES the
front end now parses the multipart body as it arrives (python-multipart), writes the file part to a
staging file under DATA_DIR (FileBlobs.stage), and hands the real files handler a small event whose
requestContext names the staged file (``stagedUpload``; only the front end builds requestContext,
as only API Gateway does in AWS). The handler checks the caller, the name, the size and the purpose
exactly as for a small upload, then adopts the staged file by a rename. Whatever it did not adopt
(a refused upload, a bad key, a client gone mid-body) is removed once it answers, and the whole
staging area when the server starts.

Small bodies keep the API Gateway path, so what is tested of it locally is what AWS runs; above it
AWS takes only signed uploads (POST /v1/files/uploads) anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentsapi.adapters.file_blobs import FileBlobs, StagedBlob
from agentsapi.errors import ApiError, InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from agentsapi.http.edge import MULTIPART_OVERHEAD_BYTES
from local.multipart_stream import boundary_of, receive_form

STAGE_ABOVE_BYTES = 4 * 1024 * 1024
STAGED_UPLOAD = "stagedUpload"  # the requestContext entry functions/files/app.py reads


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"file: the upload is over the {max_bytes}-byte limit", param="file")


class StagedUpload:
    def __init__(self, blobs: FileBlobs, boundary: bytes, max_bytes: int) -> None:
        self.blobs = blobs
        self.boundary = boundary
        self.max_bytes = max_bytes
        self.staged: StagedBlob | None = None

    def receive(self, body: Any) -> dict[str, Any]:
        form = receive_form(body, self.boundary, self.blobs, self.max_bytes, lambda: _too_large(self.max_bytes))
        if form.file is None:
            raise InvalidRequest("file: the multipart body has no 'file' field", param="file")
        self.staged = form.file
        return {STAGED_UPLOAD: {"token": form.file.token, "filename": form.filename,
                                "contentType": form.content_type, "purpose": form.fields.get("purpose"),
                                "expiry": form.fields.get("expiry"), "visibility": form.fields.get("visibility")}}

    def cleanup(self) -> None:
        if self.staged is not None:
            self.staged.discard()  # quiet when the handler adopted it (renamed away)


def upload_stager(blobs: FileBlobs, max_file_bytes: Callable[[], int],
                  authenticate: Callable[[str | None], Any] | None = None) -> Callable[[str, str, Any, int], Any]:
    """The front end's stager: POST /v1/files multipart bodies above STAGE_ABOVE_BYTES. With
    ``authenticate`` (the key store's), a caller without a valid key is refused before a byte of
    the body is read: no stranger makes the server write 512 MiB to disk. (The handler checks the
    caller again, with its rate limit, as for any request.)"""

    def stager(method: str, path: str, headers: Any, length: int) -> StagedUpload | ApiError | None:
        if method != "POST" or path != "/v1/files" or length <= STAGE_ABOVE_BYTES:
            return None
        if authenticate is not None:
            try:
                authenticate(headers.get("authorization"))
            except ApiError as refused:
                return refused
        boundary = boundary_of(headers.get("content-type") or "")
        if boundary is None:
            return UnsupportedMediaType("upload with Content-Type multipart/form-data (fields: file, purpose)",
                                        param="Content-Type")
        max_bytes = max_file_bytes()
        if length > max_bytes + MULTIPART_OVERHEAD_BYTES:  # refused before a byte is read
            return _too_large(max_bytes)
        return StagedUpload(blobs, boundary, max_bytes)

    return stager
