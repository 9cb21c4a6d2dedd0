"""Build API Gateway REST proxy events and Lambda contexts, and load the real handlers.

Used by the local HTTP front end and by the integration tests, so both exercise exactly what
API Gateway hands to Lambda, and the handlers' own routing (no second implementation).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Which function serves which path prefix (template.yaml routes /v1/agents... and /v1/conversations...).
# A value with a slash names a module other than app.py in a function's folder: /mcp is served by
# the conversations function (functions/conversations/mcp_app.py).
ROUTES = {"/v1/agents": "agents", "/v1/conversations": "conversations", "/v1/files": "files",
          "/v1/batch": "batch", "/v1/usage": "files", "/mcp": "conversations/mcp_app"}


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it is being executed
    spec.loader.exec_module(module)
    return module


# The front end lives beside the conversations handler (it is also that function's web app).
web = _load("conversations_web", ROOT / "functions" / "conversations" / "web.py")
make_event = web.make_event
# The playground's static files and headers (its own Lambda function in AWS).
playground_site = _load("playground_static_site", ROOT / "functions" / "playground" / "static_site.py")
FakeContext = web.LambdaContextStub

_loaded: dict[str, ModuleType] = {}


def handler_module(function: str) -> ModuleType:
    """Import functions/<function>/app.py (or functions/<folder>/<module>.py) under a unique name."""
    if function not in _loaded:
        folder, _, module = function.partition("/")
        path = ROOT / "functions" / folder / f"{module or 'app'}.py"
        _loaded[function] = _load(f"{folder}_{module or 'app'}", path)
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
