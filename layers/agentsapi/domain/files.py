"""Files: uploads, listing, download, signed URLs; and the files the code interpreter writes."""

from __future__ import annotations

import mimetypes
import time
import uuid
from typing import Any

from ..blobs import BlobStore, file_key
from ..errors import InvalidRequest, NotFound, PayloadTooLarge
from ..limits import MAX_NAME_BYTES, file_name_problem
from ..models.files import PURPOSES, FileRecord
from ..store import Store
from .paging import offset_page


class FileService:
    def __init__(self, store: Store, blobs: BlobStore, max_bytes: int) -> None:
        self.store = store
        self.blobs = blobs
        self.max_bytes = max_bytes

    def upload(self, ws: str, filename: str, content: bytes, purpose: str | None = None, mimetype: str | None = None,
               source: str = "upload", sample_type: str = "instruct", enforce_limit: bool = True) -> FileRecord:
        """Store a file. ``enforce_limit`` is off for files the service writes itself (batch results)."""
        problem = file_name_problem(filename)
        if problem:
            raise InvalidRequest(f"file: the file name {problem} (a plain name of at most {MAX_NAME_BYTES} bytes of "
                                 "UTF-8 is required)", param="file")
        if enforce_limit and len(content) > self.max_bytes:
            raise PayloadTooLarge(f"file: {len(content)} bytes is over the {self.max_bytes}-byte limit", param="file")
        purpose = purpose or "fine-tune"
        if purpose not in PURPOSES:
            raise InvalidRequest(f"purpose must be one of {', '.join(PURPOSES)}", param="purpose")
        mimetype = mimetype if mimetype and mimetype != "application/octet-stream" else mimetypes.guess_type(filename)[0]
        num_lines = content.count(b"\n") + (0 if content.endswith(b"\n") or not content else 1) \
            if filename.endswith(".jsonl") else None
        record = FileRecord(id=str(uuid.uuid4()), bytes=len(content), created_at=int(time.time()), filename=filename,
                            purpose=purpose, mimetype=mimetype or "application/octet-stream", num_lines=num_lines,
                            source=source, sample_type=sample_type)  # type: ignore[arg-type]
        self.blobs.put(file_key(ws, record.id), content, record.mimetype or "application/octet-stream")
        self.store.put_file(ws, record)
        return record

    def _record(self, ws: str, file_id: str) -> FileRecord:
        record = self.store.get_file(ws, file_id)
        if record is None:
            raise NotFound(f"File {file_id} not found", param="file_id")
        return record

    def get(self, ws: str, file_id: str) -> dict[str, Any]:
        return self._record(ws, file_id).to_api()

    def content(self, ws: str, file_id: str) -> tuple[FileRecord, bytes]:
        record = self._record(ws, file_id)
        data = self.blobs.get(file_key(ws, file_id))
        if data is None:
            raise NotFound(f"File {file_id} has no content", param="file_id")
        return record, data

    def signed_url(self, ws: str, file_id: str, expiry_hours: int) -> dict[str, str]:
        record = self._record(ws, file_id)
        return {"url": self.blobs.signed_url(file_key(ws, file_id), expiry_hours * 3600, record.filename)}

    def list(self, ws: str, page: int, page_size: int, purpose: str | None) -> dict[str, Any]:
        records = offset_page(lambda limit, token: self.store.list_files(ws, limit, token), page, page_size,
                              keep=(lambda record: record.purpose == purpose) if purpose else None)
        return {"object": "list", "data": [record.to_api() for record in records], "total": None}

    def delete(self, ws: str, file_id: str) -> dict[str, Any]:
        self._record(ws, file_id)
        self.store.delete_file(ws, file_id)
        self.blobs.delete(file_key(ws, file_id))
        return {"id": file_id, "object": "file", "deleted": True}
