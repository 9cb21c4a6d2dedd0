"""Cut Mistral's published OpenAPI description to the operations this service implements.

The description is public (mistralai/platform-docs-public, ``openapi.yaml``). This keeps the
paths listed below and every component they reach, so that the conformance run
(tests/conformance/) tests exactly what we claim to serve. Run it again after fetching a newer
description and record the commit in tests/conformance/SOURCE.md:

    python tools/cut_openapi.py /path/to/openapi.yaml tests/conformance/mistral-openapi.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

# The operations we serve. The description's "#stream" paths are documentation devices for the
# same URL with "stream": true; the conformance test checks streamed events on its own.
IMPLEMENTED = (
    "/v1/conversations", "/v1/conversations/{conversation_id}", "/v1/conversations/{conversation_id}/history",
    "/v1/conversations/{conversation_id}/messages", "/v1/conversations/{conversation_id}/restart",
    "/v1/agents", "/v1/agents/{agent_id}", "/v1/agents/pages", "/v1/agents/{agent_id}/version",
    "/v1/agents/{agent_id}/versions", "/v1/agents/{agent_id}/versions/{version}", "/v1/agents/{agent_id}/aliases",
    "/v1/files", "/v1/files/{file_id}", "/v1/files/{file_id}/content", "/v1/files/{file_id}/url",
    "/v1/batch/jobs", "/v1/batch/jobs/{job_id}", "/v1/batch/jobs/{job_id}/cancel",
)
STREAM_PATHS = ("/v1/conversations#stream", "/v1/conversations/{conversation_id}#stream",
                "/v1/conversations/{conversation_id}/restart#stream")


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*map(_refs, node)) if node else set()
    return set()


def cut(document: dict[str, Any]) -> dict[str, Any]:
    paths = {path: document["paths"][path] for path in IMPLEMENTED + STREAM_PATHS}
    components: dict[str, dict[str, Any]] = {}
    pending = _refs(paths)
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, kind, name = ref.split("/", 3)
        node = document["components"][kind][name]
        components.setdefault(kind, {})[name] = node
        pending |= _refs(node)
    kept = {key: document[key] for key in ("openapi", "info") if key in document}
    kept["servers"] = [{"url": "http://127.0.0.1:8080"}]
    kept["security"] = document.get("security", [{"ApiKey": []}])
    components.setdefault("securitySchemes", {}).update(document["components"].get("securitySchemes", {}))
    kept["paths"] = paths
    kept["components"] = {kind: dict(sorted(items.items())) for kind, items in sorted(components.items())}
    return kept


def main(source: str, target: str) -> None:
    document = yaml.safe_load(Path(source).read_text())
    Path(target).write_text(yaml.safe_dump(cut(document), sort_keys=False, allow_unicode=True, width=120))


if __name__ == "__main__":
    main(*sys.argv[1:3])
