"""Signed uploads: files larger than one API Gateway request go straight to storage.

``POST /v1/files/uploads`` checks the name, purpose and size as an upload would, keeps them as a
small *intent* blob (written by the service: the client never states them again), and answers
with the file's future id and a presigned POST for exactly ``uploads/<ws>/<id>`` whose body the
store refuses outside the size bound. Nothing is a file yet.

A file exists once its bytes do: ``complete`` moves ``uploads/<ws>/<id>`` onto the file's key
(S3: a server-side copy; on disk: a rename) and records it. It runs from the store's
notification (S3 ObjectCreated on ``uploads/`` in AWS; the local /_blobs/ route after it wrote
the bytes), and lazily from a listing or a retrieve that would otherwise miss it, so a pending
upload never shows as a file and a stored one always does. It is idempotent: any number of
notifications and lazy calls, in any interleaving, leave one file.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from ..blobs import file_key, upload_intent_key, upload_key
from ..errors import Conflict, InvalidRequest, PayloadTooLarge, QuotaExceeded
from ..models.files import FileRecord
from ..quota import FILES

if TYPE_CHECKING:
    from .files import FileService

UPLOAD_EXPIRY_S = 3600  # the presigned POST's life; intents and orphaned bytes expire after a day
UPLOAD_PREFIX = "uploads/"


class SignedUploads:
    def __init__(self, files: FileService) -> None:
        self.files = files

    def create(self, ws: str, filename: str, purpose: str | None = None, size: int | None = None) -> dict[str, Any]:
        """The future file's id and the signed POST its bytes go to (exactly ``size`` bytes if given)."""
        if size is not None and size < 0:
            raise InvalidRequest("size must be a non-negative number of bytes", param="size")
        if size is not None and size > self.files.max_bytes:
            raise PayloadTooLarge(f"size: {size} bytes is over the {self.files.max_bytes}-byte limit", param="size")
        # The same checks as a direct upload, before anything is signed or stored.
        record = self.files._new_record(filename, 0, purpose, None, None)
        quota = self.files.quota
        room = quota.room(ws) if quota is not None else None
        if size is not None and room is not None and size > room:
            raise quota.exceeded(ws, size, f"the file {filename!r}", param="size")  # type: ignore[union-attr]
        intent = {"filename": record.filename, "purpose": record.purpose, "size": size}
        self.files.blobs.put(upload_intent_key(ws, record.id), json.dumps(intent).encode(), "application/json")
        low, high = (size, size) if size is not None else (0, self.files.max_bytes)
        post = self.files.blobs.presigned_post(upload_key(ws, record.id), UPLOAD_EXPIRY_S, high, low)
        return {"id": record.id, "object": "file.upload", "url": post["url"], "fields": post["fields"],
                "expires_at": int(time.time()) + UPLOAD_EXPIRY_S, "max_bytes": high}

    def complete(self, ws: str, file_id: str) -> FileRecord | None:
        """Record the upload as a file if its bytes are stored; None while it is pending (or unknown)."""
        files = self.files
        if not _plain_id(file_id):
            return None
        existing = files.store.get_file(ws, file_id)
        if existing is not None:  # done before; bytes POSTed again to the same signature are dropped
            files.blobs.delete(upload_key(ws, file_id))
            files.blobs.delete(upload_intent_key(ws, file_id))
            return existing
        raw = files.blobs.get(upload_intent_key(ws, file_id))
        if raw is None:
            return None  # no such upload, or completed by someone else meanwhile (its record says so)
        intent = json.loads(raw)
        if intent.get("refused"):
            raise QuotaExceeded(intent["refused"], **intent["quota"], param="file_id")
        size = files.blobs.size(upload_key(ws, file_id))
        if size is None:
            # Pending, unless a completer was stopped between moving the bytes and recording them.
            size = files.blobs.size(file_key(ws, file_id))
            if size is None:
                return None
        elif size > files.max_bytes or (intent.get("size") is not None and size != intent["size"]):
            files.blobs.delete(upload_key(ws, file_id))  # the store enforces the bound; never trust only that
            return None
        else:
            try:
                files._charge(ws, size, f"the uploaded file {intent['filename']!r}")
            except QuotaExceeded as refused:
                self._refuse(ws, file_id, intent, refused)
                raise
            if not files.blobs.move(upload_key(ws, file_id), file_key(ws, file_id)):
                if files.quota is not None:
                    files.quota.credit(ws, FILES, size)
                return files.store.get_file(ws, file_id)  # another completer moved it first
        num_lines = None
        if intent["filename"].endswith(".jsonl"):
            from .files import _line_count

            num_lines = _line_count(files.blobs.stream(file_key(ws, file_id)) or [])
        record = files._new_record(intent["filename"], size, intent["purpose"], None, num_lines)
        record = record.model_copy(update={"id": file_id})
        try:
            files.store.put_file(ws, record)
        except Conflict:
            record = files.store.get_file(ws, file_id) or record
        files.blobs.delete(upload_intent_key(ws, file_id))
        return record

    def _refuse(self, ws: str, file_id: str, intent: dict[str, Any], refused: QuotaExceeded) -> None:
        """Bytes that arrived when the workspace had no room for them: removed, and the intent says
        why, so that retrieving the file answers the quota error rather than a bare 404."""
        self.files.blobs.delete(upload_key(ws, file_id))
        intent = {**intent, "refused": refused.message, "quota": {
            "quota_bytes": refused.quota_bytes, "used_bytes": refused.used_bytes,
            "requested_bytes": refused.requested_bytes}}
        self.files.blobs.put(upload_intent_key(ws, file_id), json.dumps(intent).encode(), "application/json")

    def complete_all(self, ws: str) -> None:
        """Record every upload of the workspace whose bytes are in (one listing of its prefix)."""
        for key in self.files.blobs.keys(f"{UPLOAD_PREFIX}{ws}/"):
            with contextlib.suppress(QuotaExceeded):  # refused uploads are not files: the listing goes on
                self.complete(ws, key.rsplit("/", 1)[-1])

    def object_created(self, key: str) -> FileRecord | None:
        """The store's notification for a key under uploads/ (URL-encoded as S3 events carry it)."""
        parts = unquote_plus(key).split("/")
        if len(parts) != 3 or f"{parts[0]}/" != UPLOAD_PREFIX:
            return None
        try:
            return self.complete(parts[1], parts[2])
        except QuotaExceeded:
            return None  # refused, with its reason kept for whoever retrieves it


def _plain_id(file_id: str) -> bool:
    try:
        return str(uuid.UUID(file_id)) == file_id
    except ValueError:
        return False
