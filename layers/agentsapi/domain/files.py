"""Files: uploads, listing, download, signed URLs; and the files the code interpreter writes."""

from __future__ import annotations

import mimetypes
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..blobs import SANDBOX_PREFIX, BlobStore, file_key
from ..errors import InvalidRequest, NotFound, PayloadTooLarge
from ..limits import MAX_NAME_BYTES, file_name_problem
from ..models.files import PURPOSES, FileRecord
from ..payloads import DIRECT_DOWNLOAD_MAX_BYTES, SIGNED_URL_ROUTE
from ..quota import FILES, StorageQuota
from ..store import Store
from .paging import Fetch, all_matching, offset_page
from .uploads import SignedUploads

# An internal redirect is followed by the front end at once; the signature need not outlive that.
INTERNAL_REDIRECT_TTL_S = 300


@dataclass
class Download:
    """The bytes to answer with, or the signed path the local front end streams them from."""

    record: FileRecord
    data: bytes | None = None
    redirect: str | None = None


def _line_count(chunks: Iterable[bytes]) -> int:
    """Lines of a JSONL file (a last line without its newline counts), read chunk by chunk."""
    lines, last = 0, b""
    for chunk in chunks:
        if chunk:
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (1 if last and last != b"\n" else 0)


MAX_EXPIRY_HOURS = 24 * 365


def upload_expiry(expiry: str | None, visibility: str | None, now: float) -> int | None:
    """When an upload's file is to be deleted (``expiry`` in hours, as the SDK's batch helper
    sends it), or None: kept until deleted. Visibility is the workspace's: every key of a
    workspace sees its files, so "user" cannot be honoured and is refused."""
    if visibility not in (None, "", "workspace"):
        raise InvalidRequest("visibility: only 'workspace' is supported (every key of a workspace sees its files)",
                             param="visibility")
    if expiry in (None, "", "null"):
        return None
    try:
        hours = int(expiry)
    except ValueError as exc:
        raise InvalidRequest("expiry must be a whole number of hours", param="expiry") from exc
    if not 1 <= hours <= MAX_EXPIRY_HOURS:
        raise InvalidRequest(f"expiry must be between 1 and {MAX_EXPIRY_HOURS} hours", param="expiry")
    return int(now) + hours * 3600


@dataclass(frozen=True)
class FileSelection:
    """The files list's filters (each one empty: no filter): ``search`` a case-insensitive part of
    the file name, the rest exact values, any of those given."""

    purpose: str | None = None
    search: str | None = None
    sources: frozenset[str] = frozenset()
    sample_types: frozenset[str] = frozenset()
    mimetypes: frozenset[str] = frozenset()

    def keeps(self, record: FileRecord) -> bool:
        return ((not self.purpose or record.purpose == self.purpose)
                and (not self.search or self.search.casefold() in record.filename.casefold())
                and (not self.sources or record.source in self.sources)
                and (not self.sample_types or record.sample_type in self.sample_types)
                and (not self.mimetypes or record.mimetype in self.mimetypes))


class FileService:
    def __init__(self, store: Store, blobs: BlobStore, max_bytes: int,
                 max_response_bytes: int = DIRECT_DOWNLOAD_MAX_BYTES, quota: StorageQuota | None = None) -> None:
        self.store = store
        self.blobs = blobs
        self.max_bytes = max_bytes
        self.max_response_bytes = max_response_bytes
        self.quota = quota
        self.uploads = SignedUploads(self)

    def upload(self, ws: str, filename: str, content: bytes, purpose: str | None = None, mimetype: str | None = None,
               source: str = "upload", sample_type: str = "instruct", enforce_limit: bool = True,
               enforce_quota: bool = True, expires_at: int | None = None) -> FileRecord:
        """Store a file. ``enforce_limit`` is off for files the service writes itself (batch results,
        which are counted but never refused: ``enforce_quota`` off), and for batch inbox drops."""
        num_lines = _line_count([content]) if filename.endswith(".jsonl") else None
        record = self._new_record(filename, len(content), purpose, mimetype, num_lines, source, sample_type,
                                  enforce_limit, expires_at)
        self._charge(ws, len(content), f"the file {filename!r}", enforce_quota)
        try:
            self.blobs.put(file_key(ws, record.id), content, record.mimetype or "application/octet-stream")
            self.store.put_file(ws, record)
        except BaseException:
            self._forget(ws, record.id, len(content))
            raise
        return record

    def _charge(self, ws: str, nbytes: int, what: str, enforce: bool = True) -> None:
        """Count a new file's bytes against the workspace's quota (QuotaExceeded if no room)."""
        if self.quota is None:
            return
        if enforce:
            self.quota.charge(ws, FILES, nbytes, what, param="file")
        else:
            self.quota.charge_anyway(ws, FILES, nbytes)

    def _forget(self, ws: str, file_id: str, nbytes: int) -> None:
        """A new file that could not be stored whole: no blob left behind, its charge given back."""
        self.blobs.delete(file_key(ws, file_id))
        if self.quota is not None:
            self.quota.credit(ws, FILES, nbytes)

    def adopt_staged(self, ws: str, token: str, filename: str, purpose: str | None = None,
                     mimetype: str | None = None, expires_at: int | None = None) -> FileRecord:
        """A large upload the local front end streamed to a staging file (never held in memory):
        the same checks as ``upload``, then the staged file becomes the blob by a rename."""
        staged = getattr(self.blobs, "open_staged", None)
        reader = staged(token) if staged is not None else None
        if reader is None:
            raise RuntimeError("a staged upload was named, but this blob store holds no such staged file")
        if filename.endswith(".jsonl"):
            num_lines = _line_count(reader)
        else:
            reader.close()
            num_lines = None
        record = self._new_record(filename, reader.size, purpose, mimetype, num_lines, expires_at=expires_at)
        self._charge(ws, reader.size, f"the file {filename!r}")
        try:
            if not self.blobs.adopt(token, file_key(ws, record.id)):  # type: ignore[attr-defined]
                raise RuntimeError("the staged upload disappeared before it was stored")
            self.store.put_file(ws, record)
        except BaseException:
            self._forget(ws, record.id, reader.size)
            raise
        return record

    def adopt_blob(self, ws: str, filename: str, key: str, purpose: str | None = None,
                   mimetype: str | None = None, source: str = "mistral") -> FileRecord:
        """A file the code interpreter wrote, already in the blob store under ``key`` (the sandbox
        handed it over by reference): moved under the file's own key, then measured there and
        recorded. Measured after the move, not before: in AWS the output's upload URL is still
        valid a while after the execution, and the object at the file's own key is one no URL
        names, so the size recorded and checked against the limit is the size of what is kept."""
        if not key.startswith(SANDBOX_PREFIX):  # only what a sandbox adapter put in transit, never a stored file
            raise InvalidRequest(f"the output {filename} does not come from a sandbox exchange", param="file")
        record = self._new_record(filename, 0, purpose, mimetype, None, source)  # name and purpose checked first
        target = file_key(ws, record.id)
        if not self.blobs.move(key, target):
            raise NotFound(f"the output {filename} is no longer stored", param="file")
        size = self.blobs.size(target) or 0
        if size > self.max_bytes:
            self.blobs.delete(target)
            raise PayloadTooLarge(f"file: {size} bytes is over the {self.max_bytes}-byte limit (FILES_MAX_BYTES)",
                                  param="file")
        try:
            self._charge(ws, size, f"the file {filename!r}")
        except BaseException:
            self.blobs.delete(target)
            raise
        record = record.model_copy(update={"bytes": size})
        try:
            self.store.put_file(ws, record)
        except BaseException:
            self._forget(ws, record.id, size)
            raise
        return record

    def remove(self, ws: str, file_id: str) -> None:
        """Take back a file this service recorded moments ago (a turn that failed after the code
        wrote it): record, bytes and charge."""
        record = self.store.get_file(ws, file_id)
        if record is not None and self.store.delete_file(ws, file_id):
            self._forget(ws, file_id, record.bytes)

    def record(self, ws: str, file_id: str) -> FileRecord:
        """The file's record (404 if it is not this workspace's)."""
        return self._record(ws, file_id)

    def _new_record(self, filename: str, size: int, purpose: str | None, mimetype: str | None,
                    num_lines: int | None, source: str = "upload", sample_type: str = "instruct",
                    enforce_limit: bool = True, expires_at: int | None = None) -> FileRecord:
        """The checks every new file passes, in the order a client fixes them, and its record."""
        problem = file_name_problem(filename)
        if problem:
            raise InvalidRequest(f"file: the file name {problem} (a plain name of at most {MAX_NAME_BYTES} bytes of "
                                 "UTF-8 is required)", param="file")
        if enforce_limit and size > self.max_bytes:
            raise PayloadTooLarge(f"file: {size} bytes is over the {self.max_bytes}-byte limit (FILES_MAX_BYTES)",
                                  param="file")
        purpose = purpose or "fine-tune"
        if purpose not in PURPOSES:
            raise InvalidRequest(f"purpose must be one of {', '.join(PURPOSES)}", param="purpose")
        mimetype = mimetype if mimetype and mimetype != "application/octet-stream" else mimetypes.guess_type(filename)[0]
        return FileRecord(id=str(uuid.uuid4()), bytes=size, created_at=int(time.time()), filename=filename,
                          purpose=purpose, mimetype=mimetype or "application/octet-stream", num_lines=num_lines,
                          source=source, sample_type=sample_type, expires_at=expires_at)  # type: ignore[arg-type]

    def _record(self, ws: str, file_id: str) -> FileRecord:
        # A signed upload whose bytes are in but whose notification has not run yet is recorded now:
        # once its bytes are stored, a file is always there to retrieve.
        record = self.store.get_file(ws, file_id) or self.uploads.complete(ws, file_id)
        if record is not None and record.expired(time.time()):
            self.remove(ws, file_id)  # past its expiry: deleted when first seen, if the sweep has not yet
            record = None
        if record is None:
            raise NotFound(f"File {file_id} not found", param="file_id")
        return record

    def get(self, ws: str, file_id: str) -> dict[str, Any]:
        return self._record(ws, file_id).to_api()

    def download(self, ws: str, file_id: str, internal_redirect: bool = False) -> Download:
        """What ``GET /v1/files/{id}/content`` answers. Behind the local front end a file-system
        blob is streamed by the front end itself from a signed path (never read into the handler);
        elsewhere the bytes travel in the response, which API Gateway and Lambda bound."""
        record = self._record(ws, file_id)
        signed_path = getattr(self.blobs, "signed_path", None)
        if internal_redirect and signed_path is not None:
            return Download(record, redirect=signed_path(file_key(ws, file_id), INTERNAL_REDIRECT_TTL_S, record.filename))
        if record.bytes > self.max_response_bytes:
            raise InvalidRequest(
                f"file_id: {record.bytes} bytes is more than one response through API Gateway carries "
                f"({self.max_response_bytes} bytes); download it from a signed URL: {SIGNED_URL_ROUTE} "
                "(client.files.get_signed_url)", param="file_id")
        return Download(record, data=self._content(ws, file_id))

    def _content(self, ws: str, file_id: str) -> bytes:
        data = self.blobs.get(file_key(ws, file_id))
        if data is None:
            raise NotFound(f"File {file_id} has no content", param="file_id")
        return data

    def content(self, ws: str, file_id: str) -> tuple[FileRecord, bytes]:
        record = self._record(ws, file_id)
        data = self.blobs.get(file_key(ws, file_id))
        if data is None:
            raise NotFound(f"File {file_id} has no content", param="file_id")
        return record, data

    def signed_url(self, ws: str, file_id: str, expiry_hours: int) -> dict[str, str]:
        record = self._record(ws, file_id)
        return {"url": self.blobs.signed_url(file_key(ws, file_id), expiry_hours * 3600, record.filename)}

    def list(self, ws: str, page: int, page_size: int, selection: FileSelection | None = None,
             include_total: bool = True) -> dict[str, Any]:
        self.uploads.complete_all(ws)  # signed uploads whose bytes are in appear in the very next listing
        selection = selection or FileSelection()
        now, expired = time.time(), []

        def keep(record: FileRecord) -> bool:
            if record.expired(now):
                expired.append(record.id)
                return False
            return selection.keeps(record)

        fetch: Fetch = lambda limit, token: self.store.list_files(ws, limit, token)  # noqa: E731
        total = None
        if include_total:  # Mistral's default: the total counts every file the filters keep
            records = all_matching(fetch, keep)
            total, records = len(records), records[page * page_size:(page + 1) * page_size]
        else:
            records = offset_page(fetch, page, page_size, keep=keep)
        for file_id in expired:  # past their expiry: deleted when first seen, if the sweep has not yet
            self.remove(ws, file_id)
        return {"object": "list", "data": [record.to_api() for record in records], "total": total}

    def expire(self, ws: str) -> int:
        """Delete the workspace's files past their expiry (the housekeeping sweep). Returns how many."""
        now = time.time()
        expired = all_matching(lambda limit, token: self.store.list_files(ws, limit, token),
                               lambda record: record.expired(now))
        for record in expired:
            self.remove(ws, record.id)
        return len(expired)

    def delete(self, ws: str, file_id: str) -> dict[str, Any]:
        record = self._record(ws, file_id)
        if self.store.delete_file(ws, file_id):  # of two concurrent deletes, one gives the bytes back
            self._forget(ws, file_id, record.bytes)
        return {"id": file_id, "object": "file", "deleted": True}
