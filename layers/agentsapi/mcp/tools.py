"""The MCP server's tools: their schemas, as a model reads them, and their results as content.

Each tool is a thin use of the interpreter sessions (domain/sessions.py). What goes wrong in the
user's code, or with what a tool was given (a missing argument, an unknown session, a file over
the limit), is a tool result with ``isError``, which a model can read and act on; only a request
that names no tool of ours is a JSON-RPC error.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..domain.sessions import CodeRun, InterpreterSessions, SessionFile
from ..errors import ApiError, InvalidRequest
from .protocol import INVALID_PARAMS, RpcError

FILE_URI = "sandbox://files/"  # + a file id: what resources/read takes, and resource links name
MAX_ID_CHARS = 64  # conversation and file ids are a prefix and 32 hex characters
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
SESSION_ID_HELP = ("The session to use, as returned by an earlier run_python or upload_file call. Variables, "
                   "imports and files of the session's earlier calls are there.")


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RunPython(_Arguments):
    code: str = Field(min_length=1, description="Python 3 source to run, as one notebook cell.")
    session_id: str | None = Field(None, max_length=MAX_ID_CHARS,
                                   description=SESSION_ID_HELP + " Omit it to start a new session.")


class UploadFile(_Arguments):
    name: str = Field(description="The file's name in the working directory, e.g. data.csv (no path).")
    content: str = Field(description="The file's content: text, or base64 when encoding is 'base64'.")
    encoding: Literal["utf-8", "base64"] = Field("utf-8", description="How content is given: 'utf-8' text "
                                                                      "(the default) or 'base64' for binary files.")
    session_id: str | None = Field(None, max_length=MAX_ID_CHARS,
                                   description=SESSION_ID_HELP + " Omit it to start a new session.")


class ListFiles(_Arguments):
    session_id: str = Field(max_length=MAX_ID_CHARS, description=SESSION_ID_HELP)


class ReadFile(_Arguments):
    session_id: str = Field(max_length=MAX_ID_CHARS, description=SESSION_ID_HELP)
    name: str = Field(description="The file's name, as list_files gives it.")


FILE_SCHEMA = {"type": "object", "required": ["name", "uri", "mime_type", "bytes", "origin"], "properties": {
    "name": {"type": "string"}, "uri": {"type": "string"}, "mime_type": {"type": "string"},
    "bytes": {"type": "integer"}, "origin": {"type": "string", "enum": ["uploaded", "written"]}}}


@dataclass(frozen=True)
class Tool:
    name: str
    title: str
    description: str
    arguments: type[_Arguments]
    run: Callable[[InterpreterSessions, str, Any], dict[str, Any]]
    output_schema: dict[str, Any] | None = None
    read_only: bool = False
    destructive: bool = False  # may replace what is there (a file of the same name)

    def listing(self) -> dict[str, Any]:
        schema = self.arguments.model_json_schema()
        schema.pop("title", None)
        for field in schema.get("properties", {}).values():
            field.pop("title", None)
        listed: dict[str, Any] = {"name": self.name, "title": self.title, "description": self.description,
                                  "inputSchema": schema,
                                  "annotations": {"readOnlyHint": self.read_only, "destructiveHint": self.destructive,
                                                  "openWorldHint": False}}
        if self.output_schema is not None:
            listed["outputSchema"] = self.output_schema
        return listed


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _link(found: SessionFile) -> dict[str, Any]:
    return {"type": "resource_link", "uri": FILE_URI + found.file_id, "name": found.name,
            "mimeType": found.mime_type, "size": found.bytes}


def _file_fields(found: SessionFile) -> dict[str, Any]:
    return {"name": found.name, "uri": FILE_URI + found.file_id, "mime_type": found.mime_type, "bytes": found.bytes,
            "origin": found.origin}


def _session_note(session_id: str) -> dict[str, Any]:
    return _text(f"[session_id: {session_id} — pass it to the next call to keep this session's variables and files]")


def _run_python(sessions: InterpreterSessions, ws: str, args: RunPython) -> dict[str, Any]:
    run: CodeRun = sessions.run(ws, args.session_id, args.code)
    content = [_text(run.output or "(no output)")]
    budget = sessions.read_max_bytes  # what all the inlined images may take together (one response)
    for found in run.files:  # plots come back as images; other files, and what is over, as links
        data = None
        if found.mime_type in IMAGE_TYPES and found.bytes <= budget:
            try:
                data = sessions.content(ws, found.file_id)[1]
            except ApiError:
                data = None  # the run is stored: a link still names the file
        if data is None:
            content.append(_link(found))
            continue
        budget -= len(data)
        content.append({"type": "image", "data": base64.b64encode(data).decode(), "mimeType": found.mime_type})
    content.append(_session_note(run.session_id))
    return {"content": content, "isError": run.failed,
            "structuredContent": {"session_id": run.session_id, "status": run.status, "output": run.output,
                                  "files": [_file_fields(f) for f in run.files]}}


def _upload_file(sessions: InterpreterSessions, ws: str, args: UploadFile) -> dict[str, Any]:
    if args.encoding == "base64":
        try:
            data = base64.b64decode(args.content, validate=True)
        except ValueError as exc:  # binascii.Error, or characters outside ASCII
            raise InvalidRequest(f"content is not valid base64 ({exc})", param="content") from exc
    else:
        data = args.content.encode("utf-8")  # lone surrogates were refused with the request
    session_id, found = sessions.upload(ws, args.session_id, args.name, data)
    return {"content": [_text(f"Uploaded {found.name} ({found.bytes} bytes): the session's code opens it as "
                              f"open({found.name!r}) from its next run."), _session_note(session_id)],
            "structuredContent": {"session_id": session_id, "file": _file_fields(found)}}


def _list_files(sessions: InterpreterSessions, ws: str, args: ListFiles) -> dict[str, Any]:
    files = sessions.files(ws, args.session_id)
    lines = [f"{f.name}\t{f.bytes} bytes\t{f.mime_type}\t{f.origin}" for f in files]
    return {"content": [_text("\n".join(lines) if lines else "(no files in this session yet)")],
            "structuredContent": {"session_id": args.session_id, "files": [_file_fields(f) for f in files]}}


def _read_file(sessions: InterpreterSessions, ws: str, args: ReadFile) -> dict[str, Any]:
    found, data = sessions.read(ws, args.session_id, args.name)
    return {"content": [file_content(found.file_id, found.mime_type, data, as_block=True)]}


def file_content(file_id: str, mime_type: str, data: bytes, as_block: bool) -> dict[str, Any]:
    """A file as MCP content: an image block, text, or base64 bytes (``as_block``: a tool result's
    content block; else a resources/read entry)."""
    uri = FILE_URI + file_id
    if as_block and mime_type in IMAGE_TYPES:
        return {"type": "image", "data": base64.b64encode(data).decode(), "mimeType": mime_type}
    try:
        text = data.decode("utf-8")
        fields: dict[str, Any] = {"uri": uri, "mimeType": mime_type, "text": text}
    except UnicodeDecodeError:
        fields = {"uri": uri, "mimeType": mime_type, "blob": base64.b64encode(data).decode()}
    if not as_block:
        return fields
    return _text(fields["text"]) if "text" in fields else {"type": "resource", "resource": fields}


TOOLS = {tool.name: tool for tool in (
    Tool("run_python", "Run Python",
         "Run Python 3 code in a sandboxed, stateful interpreter with no network access, like a notebook cell: "
         "the value of the last expression is shown after what the code prints. pandas, numpy, matplotlib, "
         "scipy and scikit-learn are installed. Variables, imports and files stay in the session: pass the "
         "session_id a call returned to continue it, or omit it to start a new session. Files uploaded with "
         "upload_file are in the working directory; files the code writes there are returned (plots as images, "
         "other files as links that resources/read opens).",
         RunPython, _run_python,
         output_schema={"type": "object", "required": ["session_id", "status", "output", "files"], "properties": {
             "session_id": {"type": "string"}, "status": {"type": "string"}, "output": {"type": "string"},
             "files": {"type": "array", "items": FILE_SCHEMA}}}),
    Tool("upload_file", "Upload a file",
         "Put a file into a session's working directory, for its code to read (e.g. a CSV for pandas). Text is "
         "given as is; binary content as base64 with encoding 'base64'. Without a session_id a new session is "
         "started. The Files API's size limit applies.",
         UploadFile, _upload_file, destructive=True,
         output_schema={"type": "object", "required": ["session_id", "file"], "properties": {
             "session_id": {"type": "string"}, "file": FILE_SCHEMA}}),
    Tool("list_files", "List a session's files",
         "List the files of a session: those uploaded into it and those its code wrote, the latest of each name, "
         "with their sizes and types.",
         ListFiles, _list_files, read_only=True,
         output_schema={"type": "object", "required": ["session_id", "files"], "properties": {
             "session_id": {"type": "string"}, "files": {"type": "array", "items": FILE_SCHEMA}}}),
    Tool("read_file", "Read a session's file",
         "Read a file of a session by name: images come back as images, text as text, other files as base64.",
         ReadFile, _read_file, read_only=True),
)}


def _argument_problems(exc: ValidationError) -> str:
    problems = []
    for problem in exc.errors(include_url=False):
        where = ".".join(str(part) for part in problem["loc"]) or "arguments"
        problems.append(f"{where}: {problem['msg']}")
    return "invalid arguments: " + "; ".join(problems)


def call_tool(sessions: InterpreterSessions, ws: str, params: dict[str, Any]) -> dict[str, Any]:
    """A tools/call request's result (a tool's failure is a result with ``isError``)."""
    name, arguments = params.get("name"), params.get("arguments", {})
    if not isinstance(name, str) or not isinstance(arguments, dict):
        raise RpcError(INVALID_PARAMS, "tools/call needs params.name (a string) and params.arguments (an object)")
    tool = TOOLS.get(name)
    if tool is None:
        raise RpcError(INVALID_PARAMS, f"Unknown tool: {name} (tools/list names this server's tools: "
                                       f"{', '.join(TOOLS)})")
    try:
        parsed = tool.arguments.model_validate(arguments)
    except ValidationError as exc:
        return {"content": [_text(_argument_problems(exc))], "isError": True}
    try:
        answer = tool.run(sessions, ws, parsed)
    except ApiError as exc:
        return {"content": [_text(exc.message)], "isError": True}
    answer.setdefault("isError", False)
    return answer
