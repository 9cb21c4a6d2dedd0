"""The MCP server: the Python interpreter's sessions as MCP tools, the workspace's files as resources.

``McpServer.handle`` takes one authenticated POST (the caller's workspace, its headers and body)
and returns the reply; the HTTP edge (functions/conversations/mcp_app.py) only carries it.
"""

from __future__ import annotations

import logging
from typing import Any

from ..domain.files import FileService
from ..domain.sessions import InterpreterSessions
from ..errors import ApiError, NotFound
from .protocol import (
    HANDSHAKE_VERSIONS,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    META_SERVER_INFO,
    METHOD_NOT_FOUND,
    MODERN_VERSION,
    RESOURCE_NOT_FOUND,
    Call,
    Reply,
    RpcError,
    error,
    parse,
    result,
)
from .tools import FILE_URI, MAX_ID_CHARS, TOOLS, call_tool, file_content

logger = logging.getLogger(__name__)
SERVER_INFO = {"name": "agents-api-code-interpreter", "title": "Sandboxed Python interpreter", "version": "0.1.0"}
CAPABILITIES = {"tools": {"listChanged": False}, "resources": {"listChanged": False, "subscribe": False}}
INSTRUCTIONS = ("A sandboxed Python interpreter with no network access. run_python runs code and returns a "
                "session_id; pass it back to keep variables, imports and files between calls. upload_file puts "
                "data into a session's working directory; list_files and read_file get files out.")
# Every result says it is complete; lists and reads also say that they are the caller's own and
# not to be cached (2026-07-28 requires these; earlier revisions ignore them).
COMPLETE = {"resultType": "complete"}
PRIVATE = {**COMPLETE, "ttlMs": 0, "cacheScope": "private"}
RESOURCES_LISTED = 100


class McpServer:
    def __init__(self, sessions: InterpreterSessions, files: FileService, max_body_bytes: int,
                 max_depth: int) -> None:
        self.sessions = sessions
        self.files = files
        self.max_body_bytes = max_body_bytes
        self.max_depth = max_depth

    def handle(self, ws: str, headers: dict[str, str], body: bytes) -> Reply:
        """One POST to /mcp (``headers`` with lower-case names)."""
        call = parse(headers, body, self.max_body_bytes, self.max_depth)
        if isinstance(call, Reply):
            return call
        try:
            return result(call.id, self._dispatch(ws, call))
        except RpcError as exc:
            return error(call.id, exc)
        except ApiError as exc:  # refused outside a tool (a limit, the disk's reserve): said as such
            return error(call.id, RpcError(INTERNAL_ERROR, exc.message, status=exc.status))
        except Exception:  # noqa: BLE001 - logged with its traceback; the caller hears no detail
            logger.exception("MCP request failed", extra={"method": call.method})
            return error(call.id, RpcError(INTERNAL_ERROR, "Internal error", status=500))

    def _dispatch(self, ws: str, call: Call) -> dict[str, Any]:
        method, params = call.method, call.params
        if method == "server/discover":
            return {"supportedVersions": [MODERN_VERSION], "capabilities": CAPABILITIES, "instructions": INSTRUCTIONS,
                    "_meta": {META_SERVER_INFO: SERVER_INFO}, **PRIVATE}
        if method == "initialize" and not call.modern:
            asked = params.get("protocolVersion")
            version = asked if asked in HANDSHAKE_VERSIONS else HANDSHAKE_VERSIONS[0]
            return {"protocolVersion": version, "capabilities": CAPABILITIES, "serverInfo": SERVER_INFO,
                    "instructions": INSTRUCTIONS}
        if method == "ping":
            return dict(COMPLETE)
        if method == "tools/list":
            return {"tools": [tool.listing() for tool in TOOLS.values()], **PRIVATE}
        if method == "tools/call":
            return {**call_tool(self.sessions, ws, params), **COMPLETE}
        if method == "resources/list":
            return {"resources": self._resources(ws), **PRIVATE}
        if method == "resources/templates/list":
            return {"resourceTemplates": [{"uriTemplate": FILE_URI + "{file_id}", "name": "file",
                                           "title": "A file of this workspace",
                                           "description": "A file uploaded to, or written by code in, a session "
                                                          "(or any file of the Files API), by its id."}], **PRIVATE}
        if method == "resources/read":
            return {"contents": [self._read(ws, params.get("uri"))], **PRIVATE}
        raise RpcError(METHOD_NOT_FOUND, "Method not found", method)

    def _resources(self, ws: str) -> list[dict[str, Any]]:
        """The workspace's latest files, as resources a client may read."""
        listed = self.files.list(ws, 0, RESOURCES_LISTED, include_total=False)
        return [{"uri": FILE_URI + f["id"], "name": f["filename"], "mimeType": f.get("mimetype") or
                 "application/octet-stream", "size": f["bytes"]} for f in listed["data"]]

    def _read(self, ws: str, uri: Any) -> dict[str, Any]:
        if not isinstance(uri, str):
            raise RpcError(INVALID_PARAMS, "resources/read needs params.uri (a string)")
        if not uri.startswith(FILE_URI) or not uri[len(FILE_URI):]:
            raise RpcError(RESOURCE_NOT_FOUND, "Resource not found", {"uri": uri})
        file_id = uri[len(FILE_URI):]
        if len(file_id) > MAX_ID_CHARS:
            raise RpcError(RESOURCE_NOT_FOUND, "Resource not found", {"uri": uri[:200]})
        try:
            record, data = self.sessions.content(ws, file_id)
        except NotFound as exc:
            raise RpcError(RESOURCE_NOT_FOUND, "Resource not found", {"uri": uri}) from exc
        except ApiError as exc:
            raise RpcError(INVALID_PARAMS, exc.message) from exc
        return file_content(file_id, record.mimetype or "application/octet-stream", data, as_block=False)
