"""Batch jobs API: /v1/batch/jobs... Thin: parse, call one BatchService method, answer."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentsapi.domain.batch import JobSelection
from agentsapi.domain.metadata import parse_metadata_filter
from agentsapi.errors import InvalidRequest
from agentsapi.http.edge import json_response, query_bool, query_choices, query_int, query_time
from agentsapi.http.resolver import json_body, make_resolver, principal_of, services, workspace
from agentsapi.models.batch import STATUSES, CreateBatchJobRequest

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = make_resolver(logger)


@app.post("/v1/batch/jobs")
@tracer.capture_method(capture_response=False)
def create_job() -> Response[Any]:
    request = json_body(app, CreateBatchJobRequest)
    job = services().batch.create(workspace(app), request, created_by=principal_of(app).key_id)
    metrics.add_metric(name="BatchRequestsQueued", unit=MetricUnit.Count, value=job["total_requests"])
    return json_response(job)


@app.get("/v1/batch/jobs")
@tracer.capture_method(capture_response=False)
def list_jobs() -> Response[Any]:
    query = app.current_event.query_string_parameters or {}
    multi = app.current_event.multi_value_query_string_parameters or {}
    page = query_int(query, "page", 0, 0, 1_000_000)
    page_size = query_int(query, "page_size", 100, 1, 1000)
    order = query.get("order_by") or "-created"
    if order not in ("created", "-created"):
        raise InvalidRequest("order_by must be created or -created", param="order_by")
    selection = JobSelection(
        statuses=query_choices(multi, "status", STATUSES), agent_id=query.get("agent_id") or None,
        model=query.get("model") or None, metadata=parse_metadata_filter(query.get("metadata")),
        created_after=query_time(query, "created_after"),
        created_by=principal_of(app).key_id if query_bool(query, "created_by_me", False) else None,
        newest_first=order == "-created")
    return json_response(services().batch.list(workspace(app), page, page_size, selection))


@app.get("/v1/batch/jobs/<job_id>")
@tracer.capture_method(capture_response=False)
def get_job(job_id: str) -> Response[Any]:
    inline = query_bool(app.current_event.query_string_parameters, "inline", False)
    return json_response(services().batch.get(workspace(app), job_id, inline=inline))


@app.post("/v1/batch/jobs/<job_id>/cancel")
@tracer.capture_method(capture_response=False)
def cancel_job(job_id: str) -> Response[Any]:
    return json_response(services().batch.cancel(workspace(app), job_id))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
