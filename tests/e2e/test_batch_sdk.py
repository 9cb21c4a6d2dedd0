"""Batch jobs through the official SDK against `make serve` (worker polling moto's SQS in-process)."""

from __future__ import annotations

import json
import time

from mistralai.client import Mistral

CELL = {"inputs": "```python\nprint(6 * 7)\n```", "tools": [{"type": "code_interpreter"}]}


def wait(client: Mistral, job_id: str, timeout_s: float = 60) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.batch.jobs.get(job_id=job_id)
        if job.status in ("SUCCESS", "FAILED", "CANCELLED", "TIMEOUT_EXCEEDED"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job.status}")


def lines(client: Mistral, file_id: str) -> list[dict]:
    return [json.loads(line) for line in client.files.download(file_id=file_id).read().decode().splitlines()]


def test_inline_batch(client: Mistral) -> None:
    job = client.batch.jobs.create(endpoint="/v1/conversations", model="mistral-small-latest",
                                   requests=[{"custom_id": f"q{n}", "body": CELL} for n in range(5)])
    done = wait(client, job.id)
    assert done.status == "SUCCESS" and done.succeeded_requests == 5 and done.total_requests == 5
    output = lines(client, done.output_file)
    assert sorted(line["custom_id"] for line in output) == [f"q{n}" for n in range(5)]
    assert all(line["response"]["body"]["outputs"][0]["info"]["code_output"] == "42\n" for line in output)
    assert job.id in [j.id for j in client.batch.jobs.list().data]


def test_batch_from_an_uploaded_jsonl_file(client: Mistral) -> None:
    agent = client.beta.agents.create(model="m", name="batcher", tools=[{"type": "code_interpreter"}])
    content = "".join(json.dumps({"custom_id": f"f{n}", "body": {"inputs": CELL["inputs"]}}) + "\n" for n in range(3))
    uploaded = client.files.upload(file={"file_name": "requests.jsonl", "content": content.encode()}, purpose="batch")
    job = client.batch.jobs.create(endpoint="/v1/conversations", agent_id=agent.id, input_files=[uploaded.id])
    done = wait(client, job.id)
    assert done.status == "SUCCESS" and [line["custom_id"] for line in lines(client, done.output_file)] == ["f0", "f1", "f2"]


def test_cancel(client: Mistral) -> None:
    job = client.batch.jobs.create(endpoint="/v1/conversations", model="m",
                                   requests=[{"custom_id": f"c{n}", "body": {"inputs": "hi"}} for n in range(50)])
    cancelled = client.batch.jobs.cancel(job_id=job.id)
    assert cancelled.status in ("CANCELLATION_REQUESTED", "CANCELLED")
    done = wait(client, job.id)
    assert done.status == "CANCELLED" and done.completed_requests == 50 and done.failed_requests > 0
