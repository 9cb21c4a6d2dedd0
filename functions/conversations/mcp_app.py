"""MCP server: POST /mcp (Model Context Protocol, Streamable HTTP). Thin: the authenticated
caller, the headers and the body go to McpServer.handle; its reply goes back.

It lives beside the conversations handler because it runs code the same way: in AWS it is served
by the same function (the sandbox's invoke permission, session and file policies, the 15-minute
streamed integration that outlasts a long cell), and locally by the same front end.
"""

import base64
import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentsapi.http.edge import JSON, MCP_PATH
from agentsapi.http.resolver import make_resolver, services, workspace

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = make_resolver(logger)


def _body() -> bytes:
    event = app.current_event
    body = event.body or ""
    return base64.b64decode(body) if event.is_base64_encoded else body.encode("utf-8", "surrogateescape")


@app.post(MCP_PATH)
@tracer.capture_method(capture_response=False)
def mcp() -> Response[Any]:
    headers = {name.lower(): value for name, value in (app.current_event.headers or {}).items()}
    server = services().mcp
    assert server is not None
    reply = server.handle(workspace(app), headers, _body())
    metrics.add_metric(name="McpRequests", unit=MetricUnit.Count, value=1)
    if reply.body is None:
        return Response(status_code=reply.status, content_type=None, body="")
    return Response(status_code=reply.status, content_type=JSON, body=json.dumps(reply.body))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


__all__ = ["app", "lambda_handler"]
