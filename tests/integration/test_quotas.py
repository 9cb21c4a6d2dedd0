"""The storage quota through the real handlers on the AWS adapters (moto): files, code outputs and
session states count against the workspace's quota, refusals are 507s naming it, deletes give
bytes back, a failed turn leaves nothing, and the daily recount sets the counters to what S3 holds."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from agentsapi.blobs import session_prefix
from agentsapi.sandbox.port import ExecutionRequest, ExecutionResult, OutputRun, SandboxFile, SessionState
from tests.conftest import Api
from tests.integration.test_files import upload as upload_as

QUOTA = 10_000
KEY = "test-key"


class FilesAndStateSandbox:
    """Answers each execution with files of the given sizes and a session state, inline."""

    def __init__(self, sizes: list[int], state_bytes: int = 0, output: str = "ran\n") -> None:
        self.sizes, self.state_bytes, self.output = sizes, state_bytes, output
        self.rooms: list[int | None] = []

    def execute(self, request: ExecutionRequest) -> ExecutionResult:
        self.rooms.append(request.room_bytes)
        files = [SandboxFile(name=f"out_{n}.bin", size=size, content_b64=base64.b64encode(b"x" * size).decode())
                 for n, size in enumerate(self.sizes)]
        state = SessionState(state_b64=base64.b64encode(b"s" * self.state_bytes).decode(), bytes=self.state_bytes) \
            if self.state_bytes and request.carry_session else None
        return ExecutionResult(status="ok", outputs=[OutputRun(stream="stdout", text=self.output)], files=files,
                               session=state)


@pytest.fixture
def quota_services(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Any]:
    monkeypatch.setenv("STORAGE_QUOTA_BYTES", str(QUOTA))
    yield request.getfixturevalue("services")


def upload(api: Api, name: str, size: int) -> tuple[int, Any]:
    return upload_as(b"a" * size, filename=name, key=api.key)


def usage(api: Api) -> dict[str, Any]:
    code, body, _ = api("GET", "/v1/usage")
    assert code == 200 and body["object"] == "workspace.usage"
    return dict(body["storage"])


def code_turn(api: Api, conversation: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"inputs": "```python\nprint(1)\n```", **extra}
    if conversation is None:
        body.update(model="m", tools=[{"type": "code_interpreter"}])
    code, response, _ = api("POST", "/v1/conversations" + (f"/{conversation}" if conversation else ""), body)
    assert code == 200, response
    return dict(response)


def execution(response: dict[str, Any]) -> dict[str, Any]:
    return next(o for o in response["outputs"] if o["type"] == "tool.execution")


def s3_bytes(services: Any, prefix: str) -> int:
    return int(services.storage.blobs.total_size(prefix))


def test_uploads_count_until_the_quota_then_507_names_it_and_deletes_give_room_back(quota_services: Any,
                                                                                     api: Api) -> None:
    assert usage(api) == {"used_bytes": 0, "quota_bytes": QUOTA, "remaining_bytes": QUOTA, "files_bytes": 0,
                          "sessions_bytes": 0}
    code, first = upload(api, "a.csv", 6000)
    assert code == 200
    code, refused = upload(api, "b.csv", 5000)
    assert code == 507
    assert refused["type"] == "storage_quota_exceeded" and refused["param"] == "file"
    assert refused["quota"] == {"quota_bytes": QUOTA, "used_bytes": 6000, "requested_bytes": 5000}
    assert "'b.csv' needs 5000 bytes" in refused["message"]
    code, listed, _ = api("GET", "/v1/files")
    assert [f["filename"] for f in listed["data"]] == ["a.csv"]  # nothing of b.csv was stored
    assert usage(api)["used_bytes"] == 6000 == s3_bytes(quota_services, f"files/{workspace(quota_services)}/")
    other = Api("another-key")
    assert upload(other, "c.csv", 9000)[0] == 200  # another workspace has its own quota
    assert api("DELETE", f"/v1/files/{first['id']}")[0] == 200
    assert usage(api)["used_bytes"] == 0
    assert upload(api, "b.csv", 5000)[0] == 200


def workspace(services: Any) -> str:
    return str(services.keys.authenticate(f"Bearer {KEY}").workspace)


def test_code_outputs_and_session_states_past_the_quota_are_not_kept_and_the_output_says_so(
        quota_services: Any, api: Api) -> None:
    sandbox = FilesAndStateSandbox([4000, 4000, 4000], state_bytes=2500)
    quota_services.conversations.runtime.sandbox = sandbox
    response = code_turn(api)
    info = execution(response)["info"]
    assert [f["file_name"] for f in info["files"]] == ["out_0.bin", "out_1.bin"]
    assert "the file 'out_2.bin' the code wrote was not kept" in info["code_output"]
    assert "storage quota" in info["code_output"]
    assert "the session state was not kept" in info["code_output"]
    assert sandbox.rooms == [QUOTA]  # the sandbox was told what it may hand back
    held = usage(api)
    assert held["files_bytes"] == 8000 and held["sessions_bytes"] == 0
    ws = workspace(quota_services)
    assert s3_bytes(quota_services, f"sessions/{ws}/") == 0 and s3_bytes(quota_services, f"files/{ws}/") == 8000
    code_turn(api, response["conversation_id"])
    assert sandbox.rooms == [QUOTA, 2000]


def test_a_failed_turn_keeps_none_of_what_it_stored(quota_services: Any, api: Api) -> None:
    # The execution stores a file and a state, then the turn fails as it is saved (its output entry
    # is over MAX_ENTRY_BYTES): nothing of it stays, and the quota gets every byte back.
    quota_services.conversations.runtime.sandbox = FilesAndStateSandbox([3000], state_bytes=2000,
                                                                        output="x" * 400_000)
    code, body, _ = api("POST", "/v1/conversations", {"model": "m", "tools": [{"type": "code_interpreter"}],
                                                      "inputs": "```python\nprint(1)\n```"})
    assert code == 413, body
    ws = workspace(quota_services)
    assert s3_bytes(quota_services, f"files/{ws}/") == 0 and s3_bytes(quota_services, f"sessions/{ws}/") == 0
    assert api("GET", "/v1/files")[1]["data"] == []
    assert usage(api)["used_bytes"] == 0


def test_store_false_keeps_files_but_no_state_no_later_turn_can_load(quota_services: Any, api: Api) -> None:
    quota_services.conversations.runtime.sandbox = FilesAndStateSandbox([1000], state_bytes=2000)
    code_turn(api, store=False)
    assert usage(api)["files_bytes"] == 1000 and usage(api)["sessions_bytes"] == 0
    assert s3_bytes(quota_services, f"sessions/{workspace(quota_services)}/") == 0


def test_deleting_a_conversation_gives_its_session_states_back(quota_services: Any, api: Api) -> None:
    quota_services.conversations.runtime.sandbox = FilesAndStateSandbox([], state_bytes=1200)
    first = code_turn(api)
    code_turn(api, first["conversation_id"])
    assert usage(api)["sessions_bytes"] == 2400
    restarted = api("POST", f"/v1/conversations/{first['conversation_id']}/restart",
                    {"inputs": "again", "from_entry_id": execution(first)["id"]})[1]
    assert usage(api)["sessions_bytes"] == 3600  # the restart's own copy counts too
    assert api("DELETE", f"/v1/conversations/{first['conversation_id']}")[0] == 204
    assert usage(api)["sessions_bytes"] == 1200
    assert s3_bytes(quota_services, session_prefix(workspace(quota_services), first["conversation_id"])) == 0
    assert api("DELETE", f"/v1/conversations/{restarted['conversation_id']}")[0] == 204
    assert usage(api) == {"used_bytes": 0, "quota_bytes": QUOTA, "remaining_bytes": QUOTA, "files_bytes": 0,
                          "sessions_bytes": 0}


def test_the_daily_recount_sets_the_counters_to_what_the_bucket_holds(quota_services: Any, api: Api) -> None:
    from local.apigw import FakeContext, handler_module

    assert upload(api, "a.csv", 3000)[0] == 200
    ws = workspace(quota_services)
    blobs = quota_services.storage.blobs
    blobs.put(f"sessions/{ws}/conv_x/tool_exec_1", b"s" * 700)  # never charged (written before quotas)
    quota_services.storage.ledger.charge(ws, "files", 5000, None)  # charged, never written (a crash)
    blobs.put("files/legacy-ws/f1", b"f" * 300)  # a workspace the ledger has never seen
    event = json.loads((api_root() / "events" / "usage_recount" / "scheduled.json").read_text())
    assert handler_module("files").recount_handler(event, FakeContext(function_name="recount"))["recounted"] >= 2
    assert usage(api)["files_bytes"] == 3000 and usage(api)["sessions_bytes"] == 700
    assert quota_services.storage.ledger.usage("legacy-ws") == {"files": 300, "sessions": 0}


def api_root() -> Any:
    from tests.conftest import ROOT

    return ROOT


def test_a_turn_cancelled_after_its_execution_keeps_none_of_what_it_stored(quota_services: Any, api: Api) -> None:
    from agentsapi.models.conversations import StartConversationRequest

    quota_services.conversations.runtime.sandbox = FilesAndStateSandbox([1000], state_bytes=500)
    ws = workspace(quota_services)
    turn = quota_services.conversations.start(ws, StartConversationRequest.model_validate(
        {"model": "m", "tools": [{"type": "code_interpreter"}], "inputs": "```python\nprint(1)\n```"}))
    for event in turn.events:
        if event["type"] == "tool.execution.done":
            break  # the client goes away here: the stream is closed before the turn is saved
    assert usage(api)["used_bytes"] == 1500  # stored, while the turn runs
    turn.events.close()  # type: ignore[attr-defined]
    assert usage(api)["used_bytes"] == 0
    assert s3_bytes(quota_services, f"files/{ws}/") == 0 and s3_bytes(quota_services, f"sessions/{ws}/") == 0
    assert api("GET", "/v1/conversations")[1] == []


def test_adopting_an_output_takes_only_keys_in_transit_never_a_stored_file(quota_services: Any, api: Api) -> None:
    """The turn moves what a sandbox handed over into the workspace's files: a stored file's key
    named as an output would have been moved away from its owner (and another record made)."""
    from agentsapi.errors import InvalidRequest

    code, record = upload(api, "payroll.csv", 100)
    assert code == 200
    ws = workspace(quota_services)
    for key in (f"files/{ws}/{record['id']}", f"sessions/{ws}/conv_x/e1", f"uploads/{ws}/{record['id']}"):
        with pytest.raises(InvalidRequest) as refused:
            quota_services.files.adopt_blob(ws, "stolen.csv", key)
        assert refused.value.param == "file"
    assert quota_services.storage.blobs.get(f"files/{ws}/{record['id']}") == b"a" * 100  # still where it was
    assert [f["filename"] for f in api("GET", "/v1/files")[1]["data"]] == ["payroll.csv"]
