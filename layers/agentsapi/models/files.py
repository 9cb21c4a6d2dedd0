"""The file object, in the shape the official SDK parses (FileSchema / RetrieveFileOut)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .common import ApiModel, ClientFileName, StrictModel

Purpose = Literal["fine-tune", "batch", "ocr", "agentic_safety", "code_interpreter"]
PURPOSES = ("fine-tune", "batch", "ocr", "agentic_safety", "code_interpreter")
SAMPLE_TYPES = ("pretrain", "instruct", "batch_request", "batch_result", "batch_error")
SOURCES = ("upload", "repository", "mistral")


class FileRecord(ApiModel):
    id: str  # a dashed UUID, as Mistral's file ids are
    bytes: int
    created_at: int  # epoch seconds
    filename: str
    purpose: str
    sample_type: str = "instruct"
    source: Literal["upload", "repository", "mistral"] = "upload"
    mimetype: str | None = None
    num_lines: int | None = None
    expires_at: int | None = None  # epoch seconds; the file is deleted once it passes

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": self.bytes, "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose, "sample_type": self.sample_type,
                "source": self.source, "mimetype": self.mimetype, "num_lines": self.num_lines, "deleted": False,
                "signature": None, "expires_at": self.expires_at, "visibility": "workspace"}

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


class SignedUploadRequest(StrictModel):
    """``POST /v1/files/uploads``: a file too large for one API Gateway request, announced first."""

    filename: ClientFileName
    purpose: Purpose | None = None
    size: int | None = Field(None, ge=0)  # when given, the signed POST takes exactly this many bytes
