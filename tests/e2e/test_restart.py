"""`make serve` keeps its data: killed with SIGKILL mid-batch and started again on the same
DATA_DIR, everything the API acknowledged is there, conversations keep their interpreter
variables, and the batch job finishes with each request run exactly once."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from mistralai.client import Mistral

from local.launcher import Server

BATCH_SIZE = 6


def batch_cell(n: int) -> str:
    return f"```python\nimport time\ntime.sleep(0.4)\nprint('ran-b{n}')\n```"


def wait_for(predicate, timeout_s: float = 90, every_s: float = 0.2):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError("timed out waiting")


def all_conversations(client: Mistral) -> list[object]:
    found, page = [], 0
    while True:
        batch = client.beta.conversations.list(page=page, page_size=100)
        found.extend(batch)
        if len(batch) < 100:
            return found
        page += 1


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_everything_survives_sigkill_and_the_batch_finishes_once(data_dir: Path) -> None:
    env = {"DATA_DIR": str(data_dir), "SANDBOX_WORKERS": "2", "BATCH_LEASE_S": "900"}
    server = Server(env, log_path="/tmp/agents-api-restart-1.log")
    try:
        client = Mistral(api_key="restart-key", server_url=server.url)
        agent = client.beta.agents.create(model="mistral-medium-latest", name="keeper", instructions="be brief",
                                          tools=[{"type": "code_interpreter"}])
        conversation = client.beta.conversations.start(agent_id=agent.id,
                                                       inputs="```python\nx = 41\nprint('set')\n```")
        uploaded = client.files.upload(file={"file_name": "kept.csv", "content": b"a,b\n1,2\n"}, purpose="batch")
        job = client.batch.jobs.create(endpoint="/v1/conversations", model="mistral-small-latest",
                                       requests=[{"custom_id": f"b{n}", "body": {"inputs": batch_cell(n),
                                                                                  "tools": [{"type": "code_interpreter"}]}}
                                                 for n in range(BATCH_SIZE)])
        # Kill it once the batch is under way, not finished.
        wait_for(lambda: client.batch.jobs.get(job_id=job.id).succeeded_requests >= 1, every_s=0.05)
    finally:
        server.kill()

    server = Server(env, log_path="/tmp/agents-api-restart-2.log")
    try:
        client = Mistral(api_key="restart-key", server_url=server.url)
        assert client.beta.agents.get(agent_id=agent.id).instructions == "be brief"
        assert client.files.download(file_id=uploaded.id).read() == b"a,b\n1,2\n"
        assert conversation.conversation_id in [c.id for c in all_conversations(client)]
        turn = client.beta.conversations.append(conversation_id=conversation.conversation_id,
                                                inputs="```python\nprint(x + 1)\n```")
        execution = next(o for o in turn.outputs if o.type == "tool.execution")
        assert execution.info["code_output"] == "42\n", execution.info  # the session's variable survived

        done = wait_for(lambda: (j := client.batch.jobs.get(job_id=job.id)).status in ("SUCCESS", "FAILED") and j)
        assert done.status == "SUCCESS" and done.succeeded_requests == BATCH_SIZE, done
        output = [json.loads(line) for line in client.files.download(file_id=done.output_file).read().splitlines()]
        assert sorted(line["custom_id"] for line in output) == [f"b{n}" for n in range(BATCH_SIZE)]
        # Each request ran exactly once: one execution of its code in the whole workspace.
        runs = dict.fromkeys(range(BATCH_SIZE), 0)
        for item in all_conversations(client):
            for entry in client.beta.conversations.get_history(conversation_id=item.id).entries:
                if getattr(entry, "type", "") == "tool.execution":
                    for n in runs:
                        if f"ran-b{n}" in str(entry.info.get("code_output", "")):
                            runs[n] += 1
        assert runs == dict.fromkeys(range(BATCH_SIZE), 1), runs
    finally:
        assert server.stop() == 0


def test_a_corrupt_data_dir_is_a_clear_start_up_error(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "agents.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(RuntimeError) as failed:
        Server({"DATA_DIR": str(data_dir)}, start_timeout_s=60)
    assert str(data_dir / "agents.db") in str(failed.value)
    assert (data_dir / "agents.db").read_bytes().startswith(b"this is not a database")  # left as it was
