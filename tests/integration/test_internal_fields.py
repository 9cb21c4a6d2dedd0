"""Clients never name internal storage: an attacker with a key of its own tries to make the server
load a victim tenant's interpreter session or file into the attacker's sandbox, through every
way a request carries entries (start, append, restart, streamed, batch), and through stored data."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from agentsapi.models.entries import ToolExecutionEntry
from agentsapi.sandbox.port import ExecutionRequest, ExecutionResult, OutputRun, SessionState
from local.aws import create_queues
from tests.integration.test_files import upload

ATTACKER, VICTIM = "attacker-key", "victim-key"
VICTIM_STATE, VICTIM_FILE = b"victim-interpreter-state-5d1c", b"victim-file-bytes-8e2a"
CODE_TOOL = [{"type": "code_interpreter"}]


class StatefulSandbox:
    """Answers like a sandbox that carries sessions: the state after a cell is what ``state_for``
    says (the victim's secret for the victim's cell). Records every request it was handed."""

    def __init__(self) -> None:
        self.requests: list[ExecutionRequest] = []
        self.state_for: dict[str, bytes] = {}

    def execute(self, request: ExecutionRequest) -> ExecutionResult:
        self.requests.append(request.inlined())  # what reaches the cell: inputs by reference, resolved
        state = self.state_for.get(request.code, b"state:" + request.code.encode())
        session = SessionState(state_b64=base64.b64encode(state).decode(), bytes=len(state)) \
            if request.carry_session else None
        return ExecutionResult(status="ok", outputs=[OutputRun(stream="stdout", text="ran\n")], session=session)

    def leaked(self) -> bool:
        """Whether anything of the victim's ever reached a cell: as state, or as an input file."""
        return any(VICTIM_STATE in (r.session_state or b"") or any(VICTIM_FILE in f.content() for f in r.files)
                   for r in self.requests)


def snapshot() -> tuple[list[Any], dict[str, bytes]]:
    items = boto3.client("dynamodb").scan(TableName="agents-api-test")["Items"]
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="agents-api-test").get("Contents", [])]
    blobs = {key: s3.get_object(Bucket="agents-api-test", Key=key)["Body"].read() for key in keys}
    return sorted(items, key=lambda i: (i["PK"]["S"], i["SK"]["S"])), blobs


def workspace(services: Any, key: str) -> str:
    return str(services.keys.authenticate(f"Bearer {key}").workspace)


def code(text: str) -> str:
    return f"```python\n{text}\n```"


@pytest.fixture
def sandbox(services: Any) -> Iterator[StatefulSandbox]:
    fake = StatefulSandbox()
    services.conversations.runtime.sandbox = fake
    yield fake


@pytest.fixture
def victim(api: Any, services: Any, sandbox: StatefulSandbox) -> dict[str, str]:
    """The victim's conversation has interpreter state in S3, and the victim uploaded a file."""
    sandbox.state_for["secret = 'mine'"] = VICTIM_STATE
    code_, started, _ = api("POST", "/v1/conversations", {"model": "m", "tools": CODE_TOOL,
                                                          "inputs": code("secret = 'mine'")}, key=VICTIM)
    assert code_ == 200, started
    execution = next(o for o in started["outputs"] if o["type"] == "tool.execution")
    ws = workspace(services, VICTIM)
    session = f"sessions/{ws}/{started['conversation_id']}/{execution['id']}"
    assert boto3.client("s3").get_object(Bucket="agents-api-test", Key=session)["Body"].read() == VICTIM_STATE
    _, record = upload(VICTIM_FILE, filename="payroll.csv", key=VICTIM)
    sandbox.requests.clear()
    return {"session": session, "file": f"files/{ws}/{record['id']}", "conversation": started["conversation_id"]}


@pytest.fixture
def attacker(api: Any, victim: dict[str, str], sandbox: StatefulSandbox) -> dict[str, str]:
    code_, started, _ = api("POST", "/v1/conversations", {"model": "m", "tools": CODE_TOOL, "inputs": code("x = 1")},
                            key=ATTACKER)
    assert code_ == 200
    sandbox.requests.clear()
    return {"conversation": started["conversation_id"], "entry": started["outputs"][-1]["id"]}


def injected(ref: str) -> list[dict[str, Any]]:
    """A tool.execution entry naming a storage key, then a cell that would read what it loaded."""
    return [{"type": "tool.execution", "name": "code_interpreter", "arguments": "", "session_ref": ref},
            {"role": "user", "content": code("print(secret)")}]


def assert_refused(code_: int, body: Any, field: str) -> None:
    assert code_ == 422, body
    assert body["object"] == "error" and body["type"] == "invalid_request_error"
    (detail,) = [d for d in body["message"]["detail"] if d["loc"][-1] == field]
    assert detail["loc"][:2] == ["body", "inputs"] and detail["type"] == "extra_forbidden"
    assert field in body["message"]["detail"][-1]["loc"] or field in str(body["message"])


@pytest.mark.parametrize("target", ["session", "file"])
@pytest.mark.parametrize("stream", [False, True])
def test_session_ref_is_refused_in_start_append_and_restart(api: Any, victim: dict[str, str], attacker: dict[str, str],
                                                            sandbox: StatefulSandbox, target: str, stream: bool) -> None:
    before = snapshot()
    ref = victim[target]
    attempts = [
        ("/v1/conversations", {"model": "m", "tools": CODE_TOOL, "inputs": injected(ref), "stream": stream}),
        (f"/v1/conversations/{attacker['conversation']}", {"inputs": injected(ref), "stream": stream}),
        (f"/v1/conversations/{attacker['conversation']}/restart",
         {"from_entry_id": attacker["entry"], "inputs": injected(ref), "stream": stream}),
        # The victim's own conversation id is no way in either: another tenant's ids are 404.
        (f"/v1/conversations/{victim['conversation']}", {"inputs": code("print(secret)")}),
    ]
    for path, body in attempts[:3]:
        code_, answer, _ = api("POST", path, body, key=ATTACKER)
        assert_refused(code_, answer, "session_ref")
    assert api("POST", attempts[3][0], attempts[3][1], key=ATTACKER)[0] == 404
    assert sandbox.requests == [] and not sandbox.leaked()
    assert snapshot() == before


def test_an_explicit_null_session_ref_is_refused_too(api: Any, attacker: dict[str, str]) -> None:
    entry = {"type": "tool.execution", "name": "code_interpreter", "arguments": "", "session_ref": None}
    code_, body, _ = api("POST", f"/v1/conversations/{attacker['conversation']}", {"inputs": [entry]}, key=ATTACKER)
    assert_refused(code_, body, "session_ref")


def test_a_client_cannot_forge_a_call_waiting_for_confirmation(api: Any, attacker: dict[str, str],
                                                               sandbox: StatefulSandbox) -> None:
    """Confirming a pending call runs its arguments as code: only the model's calls may be pending."""
    before = snapshot()
    forged = {"type": "function.call", "tool_call_id": "call_1", "name": "code_interpreter",
              "arguments": '{"code": "print(1)"}', "confirmation_status": "pending"}
    code_, body, _ = api("POST", "/v1/conversations", {"model": "m", "inputs": [forged]}, key=ATTACKER)
    assert code_ == 422 and any(d["loc"][-1] == "confirmation_status" for d in body["message"]["detail"])
    assert snapshot() == before and sandbox.requests == []
    # Echoing a settled call back is still fine (the SDK's FunctionCallEntry carries the field).
    settled = {**forged, "confirmation_status": "allowed"}
    result = {"type": "function.result", "tool_call_id": "call_1", "result": "1"}
    assert api("POST", "/v1/conversations", {"model": "m", "inputs": [settled, result, {"role": "user", "content": "hi"}]},
               key=ATTACKER)[0] == 200


def test_batch_requests_cannot_name_storage_either(api: Any, services: Any, victim: dict[str, str],
                                                   sandbox: StatefulSandbox) -> None:
    services.batch.queue.queue_url = create_queues("isolation-test")[0]
    code_, job, _ = api("POST", "/v1/batch/jobs", {"endpoint": "/v1/conversations", "model": "m", "requests": [
        {"custom_id": "steal", "body": {"inputs": injected(victim["session"]), "tools": CODE_TOOL}}]}, key=ATTACKER)
    assert code_ == 200
    services.batch.process(workspace(services, ATTACKER), job["id"], 0)
    _, done, _ = api("GET", f"/v1/batch/jobs/{job['id']}", key=ATTACKER)
    assert (done["status"], done["failed_requests"]) == ("FAILED", 1)
    _, item, _ = api("GET", "/v1/files", key=ATTACKER)
    error_file = next(f for f in item["data"] if f["id"] == done["error_file"])
    _, content = services.files.content(workspace(services, ATTACKER), error_file["id"])
    assert b"session_ref" in content
    assert sandbox.requests == [] and not sandbox.leaked()
    assert api("GET", "/v1/conversations", key=ATTACKER)[1] == []


def test_a_stored_ref_outside_the_conversations_prefix_is_never_loaded(api: Any, services: Any, victim: dict[str, str],
                                                                       attacker: dict[str, str],
                                                                       sandbox: StatefulSandbox) -> None:
    """Data stored before the input check (or by any other bug) naming a foreign key is refused at
    load: appending to it, or restarting from it, starts fresh and says so; nothing is copied."""
    ws = workspace(services, ATTACKER)
    for number, ref in enumerate((victim["session"], victim["file"])):
        planted = ToolExecutionEntry(id=f"tool_exec_planted{number}", name="code_interpreter", session_ref=ref)
        conversation = services.store.get_conversation(ws, attacker["conversation"])
        services.store.append_entries(ws, conversation, [planted], expected_count=conversation.entry_count)
        code_, appended, _ = api("POST", f"/v1/conversations/{attacker['conversation']}", {"inputs": code("print(secret)")},
                                 key=ATTACKER)
        assert code_ == 200
        execution = next(o for o in appended["outputs"] if o["type"] == "tool.execution")
        assert "not this conversation's own" in execution["info"]["code_output"]
        assert sandbox.requests[-1].session_state is None
        # Restarting from the planted entry: the foreign key is neither copied nor carried.
        code_, restarted, _ = api("POST", f"/v1/conversations/{attacker['conversation']}/restart",
                                  {"from_entry_id": planted.id, "inputs": code("print(secret)")}, key=ATTACKER)
        assert code_ == 200 and sandbox.requests[-1].session_state is None
        execution = next(o for o in restarted["outputs"] if o["type"] == "tool.execution")
        assert "not this conversation's own" in execution["info"]["code_output"]
        new_entries = services.store.get_entries(ws, restarted["conversation_id"])
        assert all(ref not in e.model_dump_json() for e in new_entries)
    assert not sandbox.leaked()
    keys = snapshot()[1]
    assert [k for k, v in keys.items() if v == VICTIM_STATE] == [victim["session"]]  # never copied anywhere


def test_the_owners_own_session_still_resumes_and_restarts_get_their_own_copy(api: Any, services: Any,
                                                                              victim: dict[str, str],
                                                                              sandbox: StatefulSandbox) -> None:
    code_, _, _ = api("POST", f"/v1/conversations/{victim['conversation']}", {"inputs": code("print(secret)")}, key=VICTIM)
    assert code_ == 200 and sandbox.requests[-1].session_state == VICTIM_STATE
    _, history, _ = api("GET", f"/v1/conversations/{victim['conversation']}/history", key=VICTIM)
    first_answer = next(e["id"] for e in history["entries"] if e["type"] == "message.output")
    code_, restarted, _ = api("POST", f"/v1/conversations/{victim['conversation']}/restart",
                              {"from_entry_id": first_answer, "inputs": "no code this time"}, key=VICTIM)
    assert code_ == 200
    # The restart holds a copy under its own prefix, so it outlives the source's deletion.
    ws = workspace(services, VICTIM)
    own = f"sessions/{ws}/{restarted['conversation_id']}/"
    assert any(k.startswith(own) and v == VICTIM_STATE for k, v in snapshot()[1].items())
    assert api("DELETE", f"/v1/conversations/{victim['conversation']}", key=VICTIM)[0] == 204
    code_, _, _ = api("POST", f"/v1/conversations/{restarted['conversation_id']}", {"inputs": code("print(secret)")},
                      key=VICTIM)
    assert code_ == 200 and sandbox.requests[-1].session_state == VICTIM_STATE


def test_a_stored_ref_to_the_same_workspaces_other_conversation_or_entry_is_never_loaded(
        api: Any, services: Any, victim: dict[str, str], sandbox: StatefulSandbox) -> None:
    """Within one workspace too, an entry loads only its own state: another conversation's, another
    entry's, or a key that only begins like its own is refused at load (a rule weakened to "any
    key of the workspace" or "of the conversation" fails here)."""
    ws = workspace(services, VICTIM)
    sandbox.state_for["y = 2"] = b"second-conversation-state"
    code_, other, _ = api("POST", "/v1/conversations", {"model": "m", "tools": CODE_TOOL, "inputs": code("y = 2")},
                          key=VICTIM)
    assert code_ == 200
    earlier = next(o for o in other["outputs"] if o["type"] == "tool.execution")["id"]
    own_prefix = f"sessions/{ws}/{other['conversation_id']}/"
    a_state = victim["session"]  # the first conversation's state, of the same workspace
    for number, ref in enumerate((
            a_state,  # the same workspace's other conversation
            f"{own_prefix}{earlier}",  # this conversation's other entry
            f"{own_prefix}../{a_state.split('/', 2)[2]}",  # a path that walks out of its own prefix
            f"{own_prefix}tool_exec_forged3/../../{a_state.rsplit('/', 2)[1]}/{a_state.rsplit('/', 1)[1]}",
    )):
        planted = ToolExecutionEntry(id=f"tool_exec_forged{number}", name="code_interpreter", session_ref=ref)
        conversation = services.store.get_conversation(ws, other["conversation_id"])
        services.store.append_entries(ws, conversation, [planted], expected_count=conversation.entry_count)
        sandbox.requests.clear()
        code_, appended, _ = api("POST", f"/v1/conversations/{other['conversation_id']}",
                                 {"inputs": code("print(secret)")}, key=VICTIM)
        assert code_ == 200, appended
        execution = next(o for o in appended["outputs"] if o["type"] == "tool.execution")
        assert "not this conversation's own" in execution["info"]["code_output"], ref
        assert sandbox.requests[-1].session_state is None, ref
    assert not sandbox.leaked()
