"""Conversations API: /v1/conversations... Thin: parse, call one ConversationService method, answer.

Start, append and restart stream when the body says ``"stream": true`` (or, without the field,
when the client accepts ``text/event-stream``); the same path serves both, as Mistral's does.
"""


from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentsapi.domain.conversations import TurnResult
from agentsapi.domain.metadata import parse_metadata_filter
from agentsapi.http.edge import event_stream, json_response, no_content, query_int
from agentsapi.http.resolver import json_body, make_resolver, services, workspace
from agentsapi.models.conversations import (
    AppendConversationRequest,
    RestartConversationRequest,
    StartConversationRequest,
)

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = make_resolver(logger)


def _body(model: Any) -> Any:
    return json_body(app, model)


def _wants_stream(request: Any) -> bool:
    if "stream" in request.model_fields_set:
        return bool(request.stream)
    return "text/event-stream" in (app.current_event.get_header_value("accept") or "")


def _answer(result: TurnResult, stream: bool) -> Response[Any]:
    metrics.add_metric(name="ConversationTurns", unit=MetricUnit.Count, value=1)
    if stream:
        return event_stream(result.events)
    return json_response(result.buffered())


@app.post("/v1/conversations")
@tracer.capture_method(capture_response=False)
def start_conversation() -> Response[Any]:
    request = _body(StartConversationRequest)
    stream = _wants_stream(request)  # read the request before the turn runs
    return _answer(services().conversations.start(workspace(app), request), stream)


@app.get("/v1/conversations")
@tracer.capture_method(capture_response=False)
def list_conversations() -> Response[Any]:
    query = app.current_event.query_string_parameters or {}
    page = query_int(query, "page", 0, 0, 1_000_000)
    page_size = query_int(query, "page_size", 100, 1, 1000)
    metadata = parse_metadata_filter(query.get("metadata"))
    return json_response(services().conversations.list(workspace(app), page, page_size, metadata))


@app.post("/v1/conversations/<conversation_id>")
@tracer.capture_method(capture_response=False)
def append_conversation(conversation_id: str) -> Response[Any]:
    request = _body(AppendConversationRequest)
    stream = _wants_stream(request)
    return _answer(services().conversations.append(workspace(app), conversation_id, request), stream)


@app.post("/v1/conversations/<conversation_id>/restart")
@tracer.capture_method(capture_response=False)
def restart_conversation(conversation_id: str) -> Response[Any]:
    request = _body(RestartConversationRequest)
    stream = _wants_stream(request)
    return _answer(services().conversations.restart(workspace(app), conversation_id, request), stream)


@app.get("/v1/conversations/<conversation_id>")
@tracer.capture_method(capture_response=False)
def get_conversation(conversation_id: str) -> Response[Any]:
    return json_response(services().conversations.get(workspace(app), conversation_id))


@app.delete("/v1/conversations/<conversation_id>")
@tracer.capture_method(capture_response=False)
def delete_conversation(conversation_id: str) -> Response[Any]:
    services().conversations.delete(workspace(app), conversation_id)
    return no_content()


@app.get("/v1/conversations/<conversation_id>/history")
@tracer.capture_method(capture_response=False)
def get_history(conversation_id: str) -> Response[Any]:
    return json_response(services().conversations.history(workspace(app), conversation_id))


@app.get("/v1/conversations/<conversation_id>/messages")
@tracer.capture_method(capture_response=False)
def get_messages(conversation_id: str) -> Response[Any]:
    return json_response(services().conversations.messages(workspace(app), conversation_id))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


__all__ = ["app", "lambda_handler"]
