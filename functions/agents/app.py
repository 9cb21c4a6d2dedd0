"""Agents API: /v1/agents... Thin: parse, call one AgentService method, answer."""


from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import TypeAdapter, ValidationError

from agentsapi.domain.agents import AgentSelection
from agentsapi.domain.metadata import parse_metadata_filter
from agentsapi.errors import ValidationFailed
from agentsapi.http.edge import json_response, no_content, query_bool, query_choices, query_int
from agentsapi.http.resolver import json_body, make_resolver, services, workspace
from agentsapi.models.agents import AGENT_SOURCES, AliasName, CreateAgentRequest, SwitchVersionBody, UpdateAgentRequest

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = make_resolver(logger)


def _body(model: Any) -> Any:
    return json_body(app, model)


def _query() -> dict[str, str]:
    return app.current_event.query_string_parameters or {}


def _int_param(name: str, raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise ValidationFailed([{"type": "int_parsing", "loc": ["query", name], "msg": "must be an integer",
                                 "input": raw}]) from exc


def _alias(raw: str | None) -> str:
    try:
        return TypeAdapter(AliasName).validate_python(raw)
    except ValidationError as exc:
        raise ValidationFailed([{"type": "string_pattern_mismatch", "loc": ["query", "alias"],
                                 "msg": "alias must match ^[a-z]([a-z0-9_-]*[a-z0-9])?$ (1-64 characters)"}]) from exc


@app.post("/v1/agents")
@tracer.capture_method(capture_response=False)
def create_agent() -> Response[Any]:
    agent = services().agents.create(workspace(app), _body(CreateAgentRequest))
    metrics.add_metric(name="AgentsCreated", unit=MetricUnit.Count, value=1)
    return json_response(agent)


@app.get("/v1/agents/pages")
@tracer.capture_method(capture_response=False)
def list_agents_pages() -> Response[Any]:
    query = _query()
    page_size = query_int(query, "page_size", 20, 1, 1000)
    return json_response(services().agents.list_tokens(workspace(app), page_size, query.get("page_token") or None,
                                                       _selection(query)))


def _selection(query: dict[str, str]) -> AgentSelection:
    """The list filters of Mistral's description (the SDK's metadata sentinel means none)."""
    multi = app.current_event.multi_value_query_string_parameters or {}
    deployment_chat = query_bool(query, "deployment_chat", False) if query.get("deployment_chat") else None
    return AgentSelection(name=query.get("name") or None, search=query.get("search") or None,
                          agent_id=query.get("id") or None, sources=query_choices(multi, "sources", AGENT_SOURCES),
                          deployment_chat=deployment_chat, metadata=parse_metadata_filter(query.get("metadata")))


@app.get("/v1/agents")
@tracer.capture_method(capture_response=False)
def list_agents() -> Response[Any]:
    query = _query()
    page = query_int(query, "page", 0, 0, 1_000_000)
    page_size = query_int(query, "page_size", 20, 1, 1000)
    return json_response(services().agents.list_page(workspace(app), page, page_size, _selection(query)))


@app.get("/v1/agents/<agent_id>")
@tracer.capture_method(capture_response=False)
def get_agent(agent_id: str) -> Response[Any]:
    selector = _query().get("agent_version") or None
    return json_response(services().agents.get(workspace(app), agent_id, selector))


@app.patch("/v1/agents/<agent_id>")
@tracer.capture_method(capture_response=False)
def update_agent(agent_id: str) -> Response[Any]:
    return json_response(services().agents.update(workspace(app), agent_id, _body(UpdateAgentRequest)))


@app.delete("/v1/agents/<agent_id>")
@tracer.capture_method(capture_response=False)
def delete_agent(agent_id: str) -> Response[Any]:
    services().agents.delete(workspace(app), agent_id)
    return no_content()


@app.patch("/v1/agents/<agent_id>/version")
@tracer.capture_method(capture_response=False)
def switch_version(agent_id: str) -> Response[Any]:
    # The SDK sends ?version=N with no body; the prose docs send {"version": N}. Both work.
    version = _int_param("version", _query().get("version"))
    if version is None and app.current_event.body:
        version = _body(SwitchVersionBody).version
    return json_response(services().agents.switch_version(workspace(app), agent_id, version))


@app.get("/v1/agents/<agent_id>/versions")
@tracer.capture_method(capture_response=False)
def list_versions(agent_id: str) -> Response[Any]:
    query = _query()
    page = query_int(query, "page", 0, 0, 1_000_000)
    page_size = query_int(query, "page_size", 20, 1, 100)
    return json_response(services().agents.list_versions(workspace(app), agent_id, page, page_size))


@app.get("/v1/agents/<agent_id>/versions/<version>")
@tracer.capture_method(capture_response=False)
def get_version(agent_id: str, version: str) -> Response[Any]:
    # A string in Mistral's description: a version number, or one of the agent's aliases.
    return json_response(services().agents.get(workspace(app), agent_id, version))


@app.put("/v1/agents/<agent_id>/aliases")
@tracer.capture_method(capture_response=False)
def put_alias(agent_id: str) -> Response[Any]:
    query = _query()
    version = _int_param("version", query.get("version"))
    if version is None:
        raise ValidationFailed([{"type": "missing", "loc": ["query", "version"], "msg": "Field required"}])
    return json_response(services().agents.put_alias(workspace(app), agent_id, _alias(query.get("alias")), version))


@app.get("/v1/agents/<agent_id>/aliases")
@tracer.capture_method(capture_response=False)
def list_aliases(agent_id: str) -> Response[Any]:
    return json_response(services().agents.list_aliases(workspace(app), agent_id))


@app.delete("/v1/agents/<agent_id>/aliases")
@tracer.capture_method(capture_response=False)
def delete_alias(agent_id: str) -> Response[Any]:
    services().agents.delete_alias(workspace(app), agent_id, _alias(_query().get("alias")))
    return no_content()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
