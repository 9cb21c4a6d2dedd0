"""Interpreter sessions driven directly, without a model: what the MCP server's tools do.

A session *is* a conversation. Its code runs exactly as a conversation's ``code_interpreter``
calls run (same sandbox, session state, files, storage quota), each run is stored as a
``tool.execution`` entry, and an upload is a user message carrying the file. So a session keeps
the conversations' durability, shows in the API's history and the playground, and a person can
go on chatting in it; and any conversation of the workspace can be driven as a session.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field
from typing import Literal

from ..errors import NotFound, PayloadTooLarge
from ..models.entries import Entry, FileChunk, MessageInputEntry, TextChunk, ToolExecutionEntry
from ..models.files import FileRecord
from .conversations import ConversationService, file_refs
from .files import FileService

OK_STATUSES = ("ok", "output_truncated")  # a run whose code did what it was asked (output cut or not)


@dataclass(frozen=True)
class SessionFile:
    """A file in a session's working directory: uploaded into it, or written by its code."""

    name: str
    file_id: str
    bytes: int
    mime_type: str
    origin: Literal["uploaded", "written"]


@dataclass
class CodeRun:
    session_id: str
    status: str
    output: str
    files: list[SessionFile] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status not in OK_STATUSES


def mime_type_of(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


class InterpreterSessions:
    def __init__(self, conversations: ConversationService, files: FileService, read_max_bytes: int) -> None:
        self.conversations = conversations
        self.file_service = files
        self.read_max_bytes = read_max_bytes

    def run(self, ws: str, session_id: str | None, code: str) -> CodeRun:
        """Run ``code`` in the session (a new one when ``session_id`` is None)."""
        result = self.conversations.run_code(ws, session_id, code)
        result.buffered()  # raises what the turn refused with
        execution = next(e for e in result.turn.outputs if isinstance(e, ToolExecutionEntry))
        written = [self._file(ws, f["file_id"], f["file_name"], "written") for f in execution.info.get("files", [])]
        return CodeRun(result.conversation_id, str(execution.info.get("status", "")),
                       str(execution.info.get("code_output", "")), [f for f in written if f is not None])

    def upload(self, ws: str, session_id: str | None, name: str, content: bytes) -> tuple[str, SessionFile]:
        """Store ``content`` as a file and put it in the session's working directory (from its next
        run on) under ``name``; returns the session's id and the file. The Files API's own checks
        (the name, FILES_MAX_BYTES, the quota) refuse it before anything is stored."""
        if session_id is not None:
            self.conversations.get(ws, session_id)  # 404 before anything is stored
        record = self.file_service.upload(ws, name, content, purpose="code_interpreter", mimetype=mime_type_of(name))
        message = MessageInputEntry(role="user", content=[
            TextChunk(text=f"Uploaded {name} ({len(content)} bytes) into the working directory."),
            FileChunk(file_id=record.id)])
        try:
            result = self.conversations.run_code(ws, session_id, None, inputs=[message])
            result.buffered()
        except BaseException:
            self.file_service.remove(ws, record.id)  # nothing of a refused upload stays
            raise
        return result.conversation_id, SessionFile(name, record.id, record.bytes, mime_type_of(name), "uploaded")

    def files(self, ws: str, session_id: str) -> list[SessionFile]:
        """The session's files, the latest of each name, in the order they last changed. A file
        its code deleted later is still listed (the stored file outlives the working directory)."""
        latest: dict[str, SessionFile] = {}
        for found in self._files_in(ws, self.conversations.entries(ws, session_id)):
            latest.pop(found.name, None)
            latest[found.name] = found
        return list(latest.values())

    def read(self, ws: str, session_id: str, name: str) -> tuple[SessionFile, bytes]:
        found = next((f for f in self.files(ws, session_id) if f.name == name), None)
        if found is None:
            raise NotFound(f"no file {name!r} in session {session_id} (list_files names its files)", param="name")
        return found, self.content(ws, found.file_id)[1]

    def content(self, ws: str, file_id: str) -> tuple[FileRecord, bytes]:
        """A file of the caller's workspace, by id, if it is small enough to be returned inline
        (MCP_READ_MAX_BYTES; its size is checked before its bytes are read)."""
        record = self.file_service.record(ws, file_id)
        if record.bytes > self.read_max_bytes:
            raise PayloadTooLarge(f"{record.filename!r} is {record.bytes} bytes; at most {self.read_max_bytes} are "
                                  f"read here (MCP_READ_MAX_BYTES): download it from the Files API, GET /v1/files/"
                                  f"{file_id}/content", param="name")
        return self.file_service.content(ws, file_id)

    def _files_in(self, ws: str, entries: list[Entry]) -> list[SessionFile]:
        found: list[SessionFile | None] = []
        for entry in entries:
            if isinstance(entry, MessageInputEntry):
                found.extend(self._file(ws, file_id, None, "uploaded") for file_id in file_refs([entry]))
            elif isinstance(entry, ToolExecutionEntry):
                found.extend(self._file(ws, f["file_id"], f["file_name"], "written") for f in entry.info.get("files", []))
        return [f for f in found if f is not None]

    def _file(self, ws: str, file_id: str, name: str | None, origin: Literal["uploaded", "written"]) -> SessionFile | None:
        try:
            record = self.file_service.record(ws, file_id)
        except NotFound:
            return None  # deleted through the Files API since
        name = name or record.filename
        return SessionFile(name, file_id, record.bytes, record.mimetype or mime_type_of(name), origin)

