"""Helpers the handlers share: authenticate, parse a body, answer JSON, stream or buffer SSE."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel, ValidationError

from ..errors import ApiError, InvalidRequest, PayloadTooLarge, ValidationFailed
from .errors import error_body, from_pydantic

Model = TypeVar("Model", bound=BaseModel)
JSON = "application/json"
EVENT_STREAM = "text/event-stream; charset=utf-8"

# Set by a streaming transport (the local server, or a response-streaming front end): when it is,
# a streamed turn hands its events over instead of being buffered into the response body.
stream_sink: ContextVar[list[Iterator[bytes]] | None] = ContextVar("stream_sink", default=None)


def parse_body(model: type[Model], raw: str | None, max_bytes: int) -> Model:
    if raw is None or raw == "":
        raise ValidationFailed([{"type": "missing", "loc": ["body"], "msg": "a JSON body is required"}])
    if len(raw.encode()) > max_bytes:
        raise PayloadTooLarge(f"request body is larger than {max_bytes} bytes", param="body")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ValidationFailed([{"type": "json_invalid", "loc": ["body"], "msg": f"malformed JSON: {exc}"}]) from exc
    try:
        return model.model_validate(data)
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


def event_stream(events: Iterable[dict[str, Any]]) -> Response:
    blocks = (sse(e) for e in events)
    sink = stream_sink.get()
    if sink is not None:
        sink.append(iter(blocks))
        return Response(status_code=200, content_type=EVENT_STREAM, body="")
    # Buffered transports (API Gateway + a Python Lambda): the whole stream as one body.
    return Response(status_code=200, content_type=EVENT_STREAM, body=b"".join(blocks).decode())
