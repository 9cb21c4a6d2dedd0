"""The API against Mistral's published OpenAPI description, with schemathesis, on `make serve`.

schemathesis (a tool written by others, which knows nothing of our code) generates requests from
the description (its examples, a coverage of each parameter's edges, then random fuzzing) and
checks every response: no server error, a documented status and content type, a body that fits
the documented schema, and what an API should refuse or accept. ``CONFORMANCE_FULL=1`` adds the
coverage phase, which make test leaves out for time. Each failure it reports must be
one of the deliberate differences of ``deliberate_differences.yaml``, each with its reason;
anything else fails the test. The run is bounded by counts, not by time (deterministic
generation), so that the same cases run on every machine.

Streamed turns are checked apart: the description's "#stream" paths are documentation devices
for the same URLs with ``"stream": true``; each event we send is validated against its schema.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.servers import start_server

HERE = Path(__file__).resolve().parent
DESCRIPTION = HERE / "mistral-openapi.yaml"
DIFFERENCES = HERE / "deliberate_differences.yaml"
KEY = "conformance-key"
# make test runs the examples, fuzzing and stateful phases (about 20 s); CONFORMANCE_FULL=1 adds
# the coverage phase (every parameter's edges and every negative variant: about a minute more)
# and more examples. The differences file covers both.
FULL = os.environ.get("CONFORMANCE_FULL") == "1"
PHASES = "examples,coverage,fuzzing,stateful" if FULL else "examples,fuzzing,stateful"
EXAMPLES_PER_OPERATION = 8 if FULL else 3
STREAM_CHECK = "stream_event_schema"  # our own check of streamed events (the differences file lists its allowances too)


@dataclass(frozen=True)
class Failure:
    operation: str
    check: str
    code: str
    status: int | None
    body: str
    request: str
    detail: str = ""

    def describe(self) -> str:
        return (f"{self.code} {self.check} on {self.operation}: {self.status} {self.body[:300]}\n"
                f"    {self.detail[:400]}\n    {self.request[:400]}")


@dataclass(frozen=True)
class Allowance:
    check: str
    reason: str
    operations: tuple[str, ...] = ()  # none: any operation
    statuses: tuple[int, ...] = ()  # none: any status
    body: str | None = None  # a regular expression the response body must contain

    def covers(self, failure: Failure) -> bool:
        return (failure.check == self.check
                and (not self.operations or failure.operation in self.operations)
                and (not self.statuses or failure.status in self.statuses)
                and (self.body is None or re.search(self.body, failure.body) is not None))


def allowances() -> list[Allowance]:
    entries = yaml.safe_load(DIFFERENCES.read_text())
    found = []
    for entry in entries:
        if entry["check"] == STREAM_CHECK:
            continue
        assert entry.get("reason"), f"a deliberate difference without its reason: {entry}"
        found.append(Allowance(check=entry["check"], reason=entry["reason"],
                               operations=tuple(entry.get("operations") or ()),
                               statuses=tuple(entry.get("statuses") or ()), body=entry.get("body")))
    return found


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    running = start_server({"AUTH_MODE": "keys", "API_KEYS": KEY, "RATE_LIMIT_PER_MINUTE": "0"})
    yield running
    running.stop()


def _decoded(payload: dict[str, Any] | None) -> str:
    if not payload:
        return ""
    if "$base64" in payload:
        return base64.b64decode(payload["$base64"]).decode("utf-8", "replace")
    return str(payload.get("string", ""))


def failures_in(report: Path) -> list[Failure]:
    """Every failed check of the run's NDJSON event stream, with the response it judged."""
    found: dict[tuple[str, str, int | None, str], Failure] = {}
    for line in report.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if not finished:
            continue
        recorder = finished["recorder"]
        for case_id, checks in (recorder.get("checks") or {}).items():
            for check in checks:
                if check["status"] != "failure":
                    continue
                failure = check["failure_info"]["failure"]
                interaction = (recorder.get("interactions") or {}).get(case_id) or {}
                response = interaction.get("response") or {}
                request = interaction.get("request") or {}
                body = _decoded(response.get("content"))
                sent = f"{request.get('method')} {request.get('uri')} {_decoded(request.get('body'))}"
                item = Failure(failure["operation"], check["name"], failure.get("code") or "", response.get("status_code"),
                               body, sent, failure.get("message") or "")
                found.setdefault((item.operation, item.check, item.status, item.body[:200]), item)
    return list(found.values())


def errors_in(report: Path) -> list[tuple[str, str]]:
    found = []
    for line in report.read_text().splitlines():
        error = json.loads(line).get("NonFatalError")
        if error:
            found.append((error["value"].get("type", ""), f"{error.get('label')}: {error['value'].get('message', '')[:200]}"))
    return found


def test_every_operation_conforms_to_mistrals_description_but_for_the_listed_differences(
        server: Any, tmp_path: Path) -> None:
    report = tmp_path / "events.ndjson"
    command = [str(Path(sys.executable).parent / "schemathesis"), "run", str(DESCRIPTION), "--url", server.url,
               "-H", f"Authorization: Bearer {KEY}", "--exclude-path-regex", "#stream",
               "--phases", PHASES, "--checks", "all",
               "--max-examples", str(EXAMPLES_PER_OPERATION), "--generation-deterministic", "--seed", "1",
               "--continue-on-failure", "--no-color", "--report", "ndjson", "--report-ndjson-path", str(report),
               "--request-timeout", "60"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=400)
    assert report.exists(), completed.stdout[-3000:] + completed.stderr[-3000:]
    known = allowances()
    unexplained = [f for f in failures_in(report) if not any(a.covers(f) for a in known)]
    assert not unexplained, (f"{len(unexplained)} difference(s) from Mistral's description that "
                             f"deliberate_differences.yaml does not list:\n" + "\n".join(f.describe() for f in unexplained))
    # Errors are not responses judged but runs that could not happen: only one kind is allowed,
    # schemathesis failing to generate data from the description's own schema (its fuzzing of the
    # conversation request's unions); a network error or a timeout fails the test.
    errors = errors_in(report)
    assert all(kind in ("Unsatisfiable", "UnsatisfiableSchema") for kind, _ in errors), errors


def _event_schemas() -> tuple[dict[str, Any], dict[str, str]]:
    document = yaml.safe_load(DESCRIPTION.read_text())
    events = document["components"]["schemas"]["ConversationEvents"]["properties"]["data"]["discriminator"]["mapping"]
    return document, {kind: ref.rsplit("/", 1)[-1] for kind, ref in events.items()}


def _allowed_extra_fields() -> dict[str, set[str]]:
    """Fields our events carry beyond the description, by event type, from the differences file."""
    extra: dict[str, set[str]] = {}
    for entry in yaml.safe_load(DIFFERENCES.read_text()):
        if entry["check"] == STREAM_CHECK:
            assert entry.get("reason"), entry
            for kind in entry["events"]:
                extra.setdefault(kind, set()).update(entry["extra_fields"])
    return extra


def _stream(server: Any, path: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    events = []
    with httpx.stream("POST", f"{server.url}{path}", json={**body, "stream": True}, timeout=60,
                      headers={"Authorization": f"Bearer {KEY}"}) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in response.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                assert kind is not None, "a data line without its event line"
                events.append((kind, json.loads(line.split(":", 1)[1])))
    return events


def test_every_streamed_event_fits_its_schema_in_the_description(server: Any) -> None:
    from jsonschema import Draft202012Validator

    document, schema_of = _event_schemas()
    start = _stream(server, "/v1/conversations", {"model": "m", "tools": [{"type": "code_interpreter"}],
                                                  "inputs": "```python\nprint(6 * 7)\n```"})
    conversation_id = start[0][1].get("conversation_id")
    assert conversation_id, start[0]
    append = _stream(server, f"/v1/conversations/{conversation_id}", {"inputs": "and again"})
    entries = httpx.get(f"{server.url}/v1/conversations/{conversation_id}/history",
                        headers={"Authorization": f"Bearer {KEY}"}).json()["entries"]
    restart = _stream(server, f"/v1/conversations/{conversation_id}/restart",
                      {"inputs": "once more", "from_entry_id": entries[0]["id"]})
    extra = _allowed_extra_fields()
    seen = set()
    for kind, data in start + append + restart:
        assert kind == data["type"], (kind, data)
        assert kind in schema_of, f"{kind} is not an event type of the description"
        schema = {**document, "$ref": f"#/components/schemas/{schema_of[kind]}"}
        checked = {name: value for name, value in data.items() if name not in extra.get(kind, ())}
        problems = [e.message for e in Draft202012Validator(schema).iter_errors(checked)]
        assert not problems, (kind, data, problems)
        seen.add(kind)
    assert {"conversation.response.started", "tool.execution.started", "tool.execution.done",
            "message.output.delta", "conversation.response.done"} <= seen, seen
