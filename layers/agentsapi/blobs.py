"""The blob-store port: file bytes and session state. Adapters: S3 (AWS; moto in its tests) and the file system
(`adapters/file_blobs.py`, one machine); tests/contract/test_blob_contract.py holds both to the same semantics."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol


class BlobStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...
    def get(self, key: str, max_age_s: float | None = None) -> bytes | None: ...
    def delete(self, key: str) -> None: ...
    def delete_prefix(self, prefix: str) -> int: ...  # the bytes removed
    def copy(self, source: str, key: str, max_age_s: float | None = None) -> bool: ...
    def signed_url(self, key: str, expiry_s: int, filename: str) -> str: ...
    # Large files: sizes, chunked reads, renames, listings and signed uploads (S3's presigned POST).
    def size(self, key: str, max_age_s: float | None = None) -> int | None: ...
    def stream(self, key: str) -> Iterable[bytes] | None: ...
    def move(self, source: str, key: str) -> bool: ...
    def keys(self, prefix: str) -> list[str]: ...
    def total_size(self, prefix: str) -> int: ...  # bytes stored under a directory prefix
    def presigned_post(self, key: str, expiry_s: int, max_bytes: int, min_bytes: int = 0) -> dict[str, Any]: ...


# Top-level prefixes per kind, so S3 lifecycle rules can expire session state on its own.
def file_key(ws: str, file_id: str) -> str:
    return f"files/{ws}/{file_id}"


# A signed upload's bytes land under uploads/ (an S3 notification watches that prefix only); what
# the client asked for (name, purpose) waits under upload-intents/, written by the service itself.
def upload_key(ws: str, file_id: str) -> str:
    return f"uploads/{ws}/{file_id}"


def upload_intent_key(ws: str, file_id: str) -> str:
    return f"upload-intents/{ws}/{file_id}"


# Where one execution's data waits while it moves by reference between the API side and the
# sandbox: inputs under ``in/``, what the code wrote under ``out/`` (the sandbox's own refs), all
# removed once the turn has adopted what it keeps. In AWS the sandbox reaches nothing else.
SANDBOX_PREFIX = "sandbox/"


def exchange_key(execution_id: str, ref: str) -> str:
    return f"{SANDBOX_PREFIX}{execution_id}/{ref}"


def session_prefix(ws: str, conversation_id: str) -> str:
    return f"sessions/{ws}/{conversation_id}/"


def session_key(ws: str, conversation_id: str, entry_id: str) -> str:
    return f"{session_prefix(ws, conversation_id)}{entry_id}"


def is_own_session(ref: str, ws: str, conversation_id: str, entry_id: str | None) -> bool:
    """Whether a stored reference is the one key the conversation's own execution entry may name:
    ``sessions/<ws>/<conversation>/<entry id>``. Anything else is never loaded."""
    return bool(entry_id) and "/" not in str(entry_id) and ref == session_key(ws, conversation_id, str(entry_id))
