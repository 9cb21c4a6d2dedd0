"""The Model Context Protocol's envelope over Streamable HTTP: one JSON-RPC request per POST.

Served statelessly, so any request may reach any Lambda environment or front-end thread:
* revision 2026-07-28 (the current one): no handshake; each request names its version in
  ``params._meta`` and in the ``MCP-Protocol-Version`` header, its method in ``Mcp-Method`` (and
  a tool's name in ``Mcp-Name``), and the two must agree;
* the handshake revisions (2025-03-26 to 2025-11-25): ``initialize`` first, then requests
  carrying the negotiated version in the header; no ``Mcp-Session-Id`` is ever issued, so
  clients open no GET stream and send no DELETE.
Refusals use the official Python SDK server's codes and HTTP statuses (its checks run in nearly
the same order), so a client meets the same answers as from a reference server. Pure: no I/O.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..limits import has_lone_surrogate, too_deep

MODERN_VERSION = "2026-07-28"
HANDSHAKE_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26")  # newest first; 2024-11-05 had no Streamable HTTP
SUPPORTED_VERSIONS = (MODERN_VERSION, *HANDSHAKE_VERSIONS)
META_VERSION = "io.modelcontextprotocol/protocolVersion"
META_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
META_SERVER_INFO = "io.modelcontextprotocol/serverInfo"

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
RESOURCE_NOT_FOUND = -32002
HEADER_MISMATCH = -32020
UNSUPPORTED_PROTOCOL_VERSION = -32022
# HTTP status per JSON-RPC error code (the SDK's ERROR_CODE_HTTP_STATUS); any other code: 200.
HTTP_STATUS = {PARSE_ERROR: 400, INVALID_REQUEST: 400, INVALID_PARAMS: 400, HEADER_MISMATCH: 400,
               UNSUPPORTED_PROTOCOL_VERSION: 400, METHOD_NOT_FOUND: 404}
# Methods whose name travels in the Mcp-Name header too (2026-07-28), with the parameter holding it.
NAMED_PARAM = {"tools/call": "name", "resources/read": "uri", "prompts/get": "name"}

RequestId = str | int


class RpcError(Exception):
    """A JSON-RPC error: the request itself is wrong (a tool's own failure is a tool result)."""

    def __init__(self, code: int, message: str, data: Any = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data
        self.status = status if status is not None else HTTP_STATUS.get(code, 200)


@dataclass(frozen=True)
class Reply:
    """What goes back over HTTP: a status and a JSON-RPC message (None: no body, as for 202)."""

    status: int
    body: dict[str, Any] | None


@dataclass(frozen=True)
class Call:
    id: RequestId
    method: str
    params: dict[str, Any]
    version: str | None  # None: a handshake-era request before a version was negotiated (initialize)

    @property
    def modern(self) -> bool:
        return self.version == MODERN_VERSION


def result(request_id: RequestId, value: dict[str, Any]) -> Reply:
    return Reply(200, {"jsonrpc": "2.0", "id": request_id, "result": value})


def error(request_id: RequestId | None, exc: RpcError) -> Reply:
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.data is not None:
        body["data"] = exc.data
    return Reply(exc.status, {"jsonrpc": "2.0", "id": request_id, "error": body})


def _accepts_json(accept: str | None) -> bool:
    # No Accept header means any type is acceptable (RFC 9110 §12.5.1); one that names types must allow JSON.
    if accept is None or not accept.strip():
        return True
    types = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    return bool(types & {"application/json", "application/*", "*/*"})


def _header_value(raw: str) -> str | None:
    """A header value as the client meant it: non-ASCII names travel as ``=?base64?...?=``."""
    if raw.startswith("=?base64?") and raw.endswith("?="):
        try:
            return base64.b64decode(raw[9:-2], validate=True).decode("utf-8")
        except ValueError:  # not base64 (or not ASCII), or not UTF-8: matches nothing
            return None
    return raw


def _load(body: bytes, max_depth: int) -> Any:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise RpcError(PARSE_ERROR, f"Parse error: the body is not JSON ({exc})") from exc
    if too_deep(data, max_depth) is not None:
        raise RpcError(INVALID_REQUEST, f"the JSON is nested deeper than {max_depth} levels (MAX_JSON_DEPTH)")
    if has_lone_surrogate(body, data):
        raise RpcError(INVALID_REQUEST, "a string holds an unpaired UTF-16 surrogate escape (\\ud800-\\udfff)")
    return data


def _request_id(message: dict[str, Any]) -> RequestId | None:
    if "id" not in message:
        return None
    value = message["id"]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RpcError(INVALID_REQUEST, "id must be a string or an integer")
    return value


def _version(headers: Mapping[str, str], method: str, params: dict[str, Any]) -> str | None:
    """The request's protocol revision, checked against what the request says of itself."""
    header = headers.get("mcp-protocol-version")
    meta = params.get("_meta")
    if header is None or header in HANDSHAKE_VERSIONS:  # initialize, or a negotiated handshake revision
        return header
    if header != MODERN_VERSION:
        raise RpcError(UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version",
                       {"supported": list(SUPPORTED_VERSIONS), "requested": header})
    if not isinstance(meta, dict) or not isinstance(meta.get(META_VERSION), str) or META_CAPABILITIES not in meta:
        raise RpcError(INVALID_PARAMS, f"params._meta must be an object carrying the required {META_VERSION!r} and "
                                       f"{META_CAPABILITIES!r} envelope keys")
    if meta[META_VERSION] != header:
        raise RpcError(HEADER_MISMATCH, "the MCP-Protocol-Version header does not match params._meta's protocolVersion")
    if _header_value(headers.get("mcp-method", "")) != method:
        raise RpcError(HEADER_MISMATCH, "the Mcp-Method header does not match the request body's method")
    named = NAMED_PARAM.get(method)
    if named is not None and named in params and _header_value(headers.get("mcp-name", "")) != params[named]:
        raise RpcError(HEADER_MISMATCH, f"the Mcp-Name header does not match the request body's {named!r} parameter")
    return header


def parse(headers: Mapping[str, str], body: bytes, max_bytes: int, max_depth: int) -> Call | Reply:
    """One POST's request (headers with lower-case names), or the reply that refuses it.
    Notifications are acknowledged (202) and dropped: a stateless server has nothing to act on
    (a client cancels a call by closing its request, which stops the run)."""
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        return error(None, RpcError(INVALID_REQUEST, "Content-Type must be application/json", status=415))
    if not _accepts_json(headers.get("accept")):
        return error(None, RpcError(INVALID_REQUEST, "the Accept header must allow application/json", status=406))
    if len(body) > max_bytes:
        return error(None, RpcError(INVALID_REQUEST, f"the request body is {len(body)} bytes; at most {max_bytes} are "
                                                     "accepted (upload larger files through the Files API)", status=413))
    try:
        message = _load(body, max_depth)
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or not isinstance(message.get("method"), str):
            raise RpcError(INVALID_REQUEST, "the body must be a single JSON-RPC 2.0 request or notification object "
                                            "(jsonrpc \"2.0\", a method, and params as an object)")
        request_id = _request_id(message)
    except RpcError as exc:
        return error(None, exc)
    params = message.get("params", {})
    try:
        if not isinstance(params, dict):
            raise RpcError(INVALID_REQUEST, "params must be an object")
        version = _version(headers, message["method"], params)
    except RpcError as exc:
        return Reply(202, None) if request_id is None else error(request_id, exc)
    if request_id is None:
        return Reply(202, None)
    return Call(request_id, message["method"], params, version)
