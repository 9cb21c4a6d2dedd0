"""The file object, in the shape the official SDK parses (FileSchema / RetrieveFileOut)."""

from __future__ import annotations

from typing import Any, Literal

from .common import ApiModel

Purpose = Literal["fine-tune", "batch", "ocr", "agentic_safety", "code_interpreter"]
PURPOSES = ("fine-tune", "batch", "ocr", "agentic_safety", "code_interpreter")


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

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": self.bytes, "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose, "sample_type": self.sample_type,
                "source": self.source, "mimetype": self.mimetype, "num_lines": self.num_lines, "deleted": False,
                "signature": None, "expires_at": None, "visibility": "workspace"}
