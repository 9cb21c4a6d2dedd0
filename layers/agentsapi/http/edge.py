"""Helpers the handlers share: authenticate, parse a body, answer JSON, stream or buffer SSE."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel, ValidationError

from ..errors import ApiError, InvalidRequest, PayloadTooLarge, ValidationFailed
from ..limits import has_lone_surrogate, too_deep
from ..models.common import CLIENT_INPUT
from ..payloads import DIRECT_BODY_MAX_BYTES
from ..settings import Settings
from .errors import error_body, from_pydantic

Model = TypeVar("Model", bound=BaseModel)
JSON = "application/json"
EVENT_STREAM = "text/event-stream; charset=utf-8"

# Set by a streaming transport (the local server, or a response-streaming front end): when it is,
# a streamed turn hands its events over instead of being buffered into the response body.
stream_sink: ContextVar[list[Iterator[bytes]] | None] = ContextVar("stream_sink", default=None)


# Multipart framing around an upload's bytes; batch bodies carry many conversation bodies.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
BATCH_BODY_FACTOR = 8
MCP_PATH = "/mcp"
MCP_FRAMING_BYTES = 64 * 1024  # the JSON-RPC envelope around an upload's content


def request_body_limit(settings: Settings, path: str) -> int:
    """The largest body a route accepts: the front end refuses more before reading it, and the
    handlers check the same figure (API Gateway, which has no front end of ours, forwards any)."""
    if path == "/v1/files" or path.startswith("/v1/files/"):
        # A body in the event is what API Gateway and Lambda carry at most; larger files take a signed
        # upload, or locally the front end's staged upload (local/upload_stage.py), never an event.
        return min(settings.files_max_bytes + MULTIPART_OVERHEAD_BYTES, DIRECT_BODY_MAX_BYTES)
    if path == MCP_PATH:
        # upload_file's content travels in the JSON body (base64: 4 bytes per 3), in one event.
        return min(settings.files_max_bytes * 2 + MCP_FRAMING_BYTES, DIRECT_BODY_MAX_BYTES)
    if path == "/v1/batch" or path.startswith("/v1/batch/"):
        return settings.max_request_bytes * BATCH_BODY_FACTOR
    return settings.max_request_bytes


def too_deep_error(path: list[str | int], limit: int) -> ValidationFailed:
    return ValidationFailed([{"type": "too_deep", "loc": ["body", *path[:4]],
                              "msg": f"JSON nested deeper than {limit} levels (MAX_JSON_DEPTH)"}])




def parse_body(model: type[Model], raw: str | None, max_bytes: int, max_depth: int) -> Model:
    """Every JSON body goes through here: size, syntax, nesting depth, then the model, validated
    as client input (fields only the server sets are refused). Nothing is stored before this."""
    if raw is None or raw == "":
        raise ValidationFailed([{"type": "missing", "loc": ["body"], "msg": "a JSON body is required"}])
    if len(raw.encode("utf-8", "surrogatepass")) > max_bytes:
        raise PayloadTooLarge(f"request body is larger than {max_bytes} bytes", param="body")
    try:
        data = json.loads(raw)
    except RecursionError as exc:  # deeper than the interpreter's own limit (~1000)
        raise too_deep_error([], max_depth) from exc
    except ValueError as exc:
        raise ValidationFailed([{"type": "json_invalid", "loc": ["body"], "msg": f"malformed JSON: {exc}"}]) from exc
    deep = too_deep(data, max_depth)
    if deep is not None:
        raise too_deep_error(deep, max_depth)
    if has_lone_surrogate(raw, data):
        raise ValidationFailed([{"type": "string_unicode", "loc": ["body"],
                                 "msg": "a string holds an unpaired UTF-16 surrogate escape (\\ud800-\\udfff)"}])
    try:
        return model.model_validate(data, context=CLIENT_INPUT)
    except ValidationError as exc:
        raise from_pydantic(exc) from exc


def query_int(params: dict[str, str] | None, name: str, default: int, low: int, high: int) -> int:
    raw = (params or {}).get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise InvalidRequest(f"{name} must be an integer", param=name) from exc
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}", param=name)
    return value


def query_bool(params: dict[str, str] | None, name: str, default: bool) -> bool:
    raw = (params or {}).get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() not in ("true", "false"):
        raise InvalidRequest(f"{name} must be true or false", param=name)
    return raw.lower() == "true"


def query_time(params: dict[str, str] | None, name: str) -> int | None:
    """An ISO 8601 date-time (UTC when it names no zone) as epoch seconds."""
    raw = (params or {}).get(name)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidRequest(f"{name} must be an ISO 8601 date-time, e.g. 2026-01-31T12:00:00Z", param=name) from exc
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def query_values(multi: dict[str, list[str]] | None, name: str) -> frozenset[str]:
    """Every non-empty value of a repeated query parameter (none given: empty)."""
    return frozenset(v for v in (multi or {}).get(name) or [] if v != "")


def query_choices(multi: dict[str, list[str]] | None, name: str, allowed: Iterable[str]) -> frozenset[str]:
    """Every value of a repeated query parameter, each one of ``allowed`` (none given: empty)."""
    values = query_values(multi, name)
    unknown = sorted(values - frozenset(allowed))
    if unknown:
        raise InvalidRequest(f"{name} must be among {', '.join(sorted(allowed))}; got {', '.join(unknown)}", param=name)
    return values


def json_response(body: Any, status: int = 200) -> Response:
    return Response(status_code=status, content_type=JSON, body=json.dumps(body))


def no_content() -> Response:
    return Response(status_code=204, content_type=None, body="")


def error_response(exc: ApiError) -> Response:
    return Response(status_code=exc.status, content_type=JSON, body=json.dumps(error_body(exc)),
                    headers=exc.headers or None)


def sse(event: dict[str, Any]) -> bytes:
    """One SSE block: the ``event:`` line is mandatory for the SDK, and there is no [DONE]."""
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


def _blocks(events: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """The events as SSE blocks; closing this closes the events too (a turn closed before it is
    stored is cancelled, and keeps nothing: see ConversationService._run)."""
    try:
        for event in events:
            yield sse(event)
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


def event_stream(events: Iterable[dict[str, Any]]) -> Response:
    blocks = _blocks(events)
    sink = stream_sink.get()
    if sink is not None:
        sink.append(iter(blocks))
        return Response(status_code=200, content_type=EVENT_STREAM, body="")
    # Buffered transports (API Gateway + a Python Lambda): the whole stream as one body.
    return Response(status_code=200, content_type=EVENT_STREAM, body=b"".join(blocks).decode())
