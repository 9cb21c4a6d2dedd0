"""A multipart/form-data body read as a stream: small fields in memory, the file part written to a
FileBlobs staging file as it arrives (never whole in memory). Used by the local front end only
(large uploads to /v1/files, and signed POSTs to /_blobs/), through python-multipart's push parser.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from agentsapi.adapters.file_blobs import FileBlobs, StagedBlob
from agentsapi.errors import ApiError, InvalidRequest

MAX_FIELD_BYTES = 64 * 1024  # a non-file field (purpose, a signed POST's policy): small, kept in memory
MAX_FIELDS = 32
_EXTENDED_FILENAME = re.compile(r"filename\*\s*=\s*([A-Za-z0-9_-]+)'[^']*'([^;\s]+)", re.IGNORECASE)


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    file: StagedBlob | None = None
    filename: str = ""
    content_type: str | None = None


def boundary_of(content_type: str) -> bytes | None:
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    return boundary if kind == b"multipart/form-data" and boundary else None


def _filename(disposition: bytes, params: dict[bytes, bytes]) -> str:
    text = disposition.decode("latin-1")
    extended = _EXTENDED_FILENAME.search(text)  # RFC 5987 filename*=UTF-8''..., as the email parser reads it
    if extended:
        return unquote(extended.group(2), encoding=extended.group(1), errors="surrogateescape")
    # Browsers and httpx send the name's UTF-8 bytes as they are; an invalid sequence stays
    # recognisable (surrogate escapes), so the file-name check can refuse it by name.
    return params.get(b"filename", b"").decode("utf-8", "surrogateescape")


def receive_form(body: Iterable[bytes], boundary: bytes, blobs: FileBlobs, max_file_bytes: int,
                 too_large: Callable[[], ApiError], before_file: Callable[[dict[str, str]], int] | None = None) -> Form:
    """Parse the body; ``before_file`` sees the fields sent before the file part (and may refuse by
    raising, or return a lower size bound), ``too_large`` is raised once the file part passes the
    bound. On any error the staging file is removed; on success the caller owns it (adopt or discard)."""
    form = Form()
    state: dict[str, object] = {"headers": {}, "name": None, "field": b"", "is_file": False, "max": max_file_bytes}
    header_field = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        state.update(headers={}, name=None, field=b"", is_file=False)

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        state["headers"][bytes(header_field).lower()] = bytes(header_value)  # type: ignore[index]
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        headers: dict[bytes, bytes] = state["headers"]  # type: ignore[assignment]
        disposition = headers.get(b"content-disposition", b"")
        _, params = parse_options_header(disposition)
        name = params.get(b"name", b"").decode("utf-8", "replace")
        state["name"] = name
        if name != "file":
            return
        if form.file is not None:
            raise InvalidRequest("file: the multipart body has more than one 'file' field", param="file")
        if before_file is not None:
            state["max"] = min(max_file_bytes, before_file(form.fields))
        state["is_file"] = True
        form.filename = _filename(disposition, params)
        content_type = headers.get(b"content-type")
        form.content_type = content_type.decode("latin-1").split(";")[0].strip() if content_type else None
        form.file = blobs.stage()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["is_file"]:
            assert form.file is not None
            if form.file.size + (end - start) > state["max"]:  # type: ignore[operator]
                raise too_large()
            form.file.write(data[start:end])
            return
        value = state["field"] + data[start:end]  # type: ignore[operator]
        if len(value) > MAX_FIELD_BYTES:
            raise InvalidRequest(f"{state['name']}: a form field is over {MAX_FIELD_BYTES} bytes",
                                 param=str(state["name"]) or "body")
        state["field"] = value

    def on_part_end() -> None:
        if state["is_file"]:
            assert form.file is not None
            form.file.close()
            state["is_file"] = False
        elif state["name"]:
            if len(form.fields) >= MAX_FIELDS:
                raise InvalidRequest(f"the multipart body has more than {MAX_FIELDS} fields", param="body")
            form.fields[str(state["name"])] = state["field"].decode("utf-8", "replace")  # type: ignore[attr-defined]

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_part_end": on_part_end})
    try:
        try:
            for chunk in body:
                parser.write(chunk)
            parser.finalize()
        except MultipartParseError as exc:
            raise InvalidRequest(f"file: the multipart body is malformed ({exc})", param="file") from None
        if state["is_file"]:  # the body ended inside the file part: never store a truncated file
            raise InvalidRequest("file: the multipart body ends before the file part does", param="file")
    except BaseException:
        if form.file is not None:
            form.file.discard()
        raise
    return form
