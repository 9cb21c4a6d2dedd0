"""Build API Gateway REST proxy events and Lambda contexts, and load the real handlers.

Used by the local HTTP front end and by the integration tests, so both exercise exactly what
API Gateway hands to Lambda, and the handlers' own routing (no second implementation).
"""

from __future__ import annotations

import importlib.util
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parent.parent
# Which function serves which path prefix (template.yaml routes /v1/agents... and /v1/conversations...).
ROUTES = {"/v1/agents": "agents", "/v1/conversations": "conversations"}


def make_event(method: str, path: str, headers: dict[str, str] | None = None, query: str = "",
               body: str | None = None) -> dict[str, Any]:
    headers = dict(headers or {})
    parsed = parse_qs(query, keep_blank_values=True)
    single = {k: v[-1] for k, v in parsed.items()} or None
    multi = parsed or None
    request_id = str(uuid.uuid4())
    return {
        "resource": path,
        "path": path,
        "httpMethod": method.upper(),
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": single,
        "multiValueQueryStringParameters": multi,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path, "httpMethod": method.upper(), "path": path, "stage": "local",
            "requestId": request_id, "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": "127.0.0.1", "userAgent": headers.get("user-agent", "")},
            "accountId": "000000000000", "apiId": "local",
        },
        "body": body,
        "isBase64Encoded": False,
    }


@dataclass
class FakeContext:
    function_name: str = "local"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:local"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timeout_s: float = 300.0
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return int((self.timeout_s - (time.monotonic() - self.started)) * 1000)


_loaded: dict[str, ModuleType] = {}


def handler_module(function: str) -> ModuleType:
    """Import functions/<function>/app.py under a unique name (every function calls its module app)."""
    if function not in _loaded:
        spec = importlib.util.spec_from_file_location(f"{function}_app", ROOT / "functions" / function / "app.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _loaded[function] = module
    return _loaded[function]


def function_for(path: str) -> str | None:
    for prefix, function in ROUTES.items():
        if path == prefix or path.startswith(prefix + "/"):
            return function
    return None


def invoke(function: str, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Call a function's real Lambda handler, as Lambda would."""
    module = handler_module(function)
    try:
        return module.lambda_handler(event, context or FakeContext(function_name=function))
    finally:
        # With POWERTOOLS_METRICS_DISABLED (set locally) powertools skips the flush but keeps the
        # values, then prints them all once 100 pile up; a new invocation starts clean in Lambda.
        metrics = getattr(module, "metrics", None)
        if metrics is not None:
            metrics.clear_metrics()
