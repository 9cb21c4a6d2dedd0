"""What API Gateway does to a request, as template.yaml configures it, so that the local front end
fails where AWS would (and succeeds where AWS does).

Per route (path and method of an ``Api`` event): whether its integration streams the function's
response (``ResponseTransferMode: RESPONSE_STREAM``) or buffers it, and its integration timeout
(``TimeoutInMillis``; 29 s by default). A buffered integration answers nothing until the function
returns, and 504 if that takes longer than the timeout (the function goes on: a turn is still
stored); a streamed one passes bytes on as they come, for up to 15 minutes, and may be idle up to
5 minutes on a Regional API (docs.aws.amazon.com/apigateway/latest/developerguide/
response-transfer-mode.html, limits.html).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TIMEOUT_S = 29.0  # API Gateway's default integration timeout
STREAM_MAX_S = 900.0  # a streamed response lasts at most 15 minutes
STREAM_IDLE_S = 300.0  # Regional and private APIs; 30 s on edge-optimized ones
REQUEST_MAX_BYTES = 10 * 1024 * 1024  # API Gateway's request payload limit
BUFFERED_RESPONSE_MAX_BYTES = 6 * 1024 * 1024  # what a buffered Lambda invoke can return


@dataclass(frozen=True)
class Integration:
    streamed: bool
    timeout_s: float


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]
    methods: frozenset[str]  # "ANY" included as is
    integration: Integration

    def matches(self, method: str, path: str) -> bool:
        return ("ANY" in self.methods or method.upper() in self.methods) and bool(self.pattern.fullmatch(path))


def _path_pattern(template_path: str) -> re.Pattern[str]:
    """``/v1/conversations/{proxy+}`` -> a regex: ``{x+}`` takes the rest, ``{x}`` one segment."""
    parts = []
    for segment in template_path.strip("/").split("/"):
        if segment.startswith("{") and segment.endswith("+}"):
            parts.append(".+")
        elif segment.startswith("{"):
            parts.append("[^/]+")
        else:
            parts.append(re.escape(segment))
    return re.compile("/" + "/".join(p for p in parts if p))


@dataclass
class GatewayRules:
    routes: list[Route] = field(default_factory=list)

    def integration(self, method: str, path: str) -> Integration | None:
        """The integration of the most specific route that takes this request (None: no route)."""
        matching = [r for r in self.routes if r.matches(method, path)]
        if not matching:
            return None
        return max(matching, key=lambda r: len(r.pattern.pattern) - 100 * r.pattern.pattern.count(".+")).integration

    @classmethod
    def from_template(cls, template: dict[str, Any]) -> GatewayRules:
        routes = []
        for resource in template.get("Resources", {}).values():
            if resource.get("Type") != "AWS::Serverless::Function":
                continue
            for event in (resource.get("Properties") or {}).get("Events", {}).values():
                if event.get("Type") != "Api":
                    continue
                properties = event["Properties"]
                timeout = properties.get("TimeoutInMillis")
                integration = Integration(
                    streamed=properties.get("ResponseTransferMode") == "RESPONSE_STREAM",
                    timeout_s=float(timeout) / 1000 if isinstance(timeout, (int, float)) else DEFAULT_TIMEOUT_S)
                routes.append(Route(_path_pattern(properties["Path"]), frozenset({properties["Method"].upper()}),
                                    integration))
        return cls(routes)
