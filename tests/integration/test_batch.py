"""Batch jobs on SQS (moto) and on the SQLite queue and store: the API, the worker with partial failures, idempotency, DLQ, cancel, S3 inbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from agentsapi.domain import batch as batch_module
from local.apigw import FakeContext, handler_module
from local.aws import create_queues
from local.batch_poller import QueuePoller

CODE = "```python\nprint('hello')\n```"


@pytest.fixture(params=["sqs", "sqlite"])
def poller(request: pytest.FixtureRequest, services: Any, tmp_path: Any) -> Iterator[QueuePoller]:
    """The worker fed from SQS (moto) with the DynamoDB batch store, or from the SQLite queue with
    the SQLite batch store (the embedded server's pair)."""
    services.batch.max_receives = 3
    if request.param == "sqs":
        url, dlq = create_queues("batch-test", max_receives=3)
        services.batch.queue.queue_url = url
        yield QueuePoller.over_sqs(url, dlq)
        return
    from agentsapi.adapters.sqlite.batch import BATCH_MIGRATIONS, SqliteBatchStore
    from agentsapi.adapters.sqlite.db import Database
    from agentsapi.adapters.sqlite.queue import SqliteQueue

    db = Database(tmp_path / "agents.db", BATCH_MIGRATIONS)
    queue = SqliteQueue(db, "batch-test", visibility_timeout_s=30, max_receives=3, dead_letter_queue="batch-test-dlq")
    services.batch.store, services.batch.queue = SqliteBatchStore(db), queue
    yield QueuePoller(queue, SqliteQueue(db, "batch-test-dlq"))
    db.close()


def ws(services: Any) -> str:
    return services.keys.authenticate("Bearer test-key").workspace


def output_lines(api: Any, file_id: str) -> list[dict[str, Any]]:
    import base64

    from local.apigw import invoke, make_event

    response = invoke("files", make_event("GET", f"/v1/files/{file_id}/content", {"authorization": "Bearer test-key"}))
    return [json.loads(line) for line in base64.b64decode(response["body"]).decode().splitlines()]


def create(api: Any, **body: Any) -> dict[str, Any]:
    code, job, _ = api("POST", "/v1/batch/jobs", {"endpoint": "/v1/conversations", **body})
    assert code == 200, job
    return job


def test_inline_batch_reaches_success_with_one_line_per_request(api: Any, poller: QueuePoller, fake_sandbox: Any) -> None:
    job = create(api, model="m", requests=[{"custom_id": f"r{n}", "body": {"inputs": CODE,
                                                                          "tools": [{"type": "code_interpreter"}]}}
                                           for n in range(3)])
    assert (job["status"], job["total_requests"], job["object"]) == ("QUEUED", 3, "batch")
    poller.drain()
    _, done, _ = api("GET", f"/v1/batch/jobs/{job['id']}")
    assert done["status"] == "SUCCESS"
    assert (done["completed_requests"], done["succeeded_requests"], done["failed_requests"]) == (3, 3, 0)
    lines = output_lines(api, done["output_file"])
    assert sorted(line["custom_id"] for line in lines) == ["r0", "r1", "r2"]
    assert all(line["response"]["body"]["outputs"][0]["type"] == "tool.execution" for line in lines)
    assert len(fake_sandbox.codes) == 3 and done["error_file"] is None


def test_jsonl_file_with_malformed_lines(api: Any, poller: QueuePoller) -> None:
    from tests.integration.test_files import upload

    content = b'{"custom_id": "a", "body": {"inputs": "hi"}}\nnot json\n{"custom_id": "b"}\n{"custom_id": "c", "body": {"inputs": 5}}\n'
    _, record = upload(content, filename="requests.jsonl", purpose="batch", content_type="application/jsonl")
    job = create(api, model="m", input_files=[record["id"]])
    assert job["total_requests"] == 4 and job["failed_requests"] == 2
    poller.drain()
    _, done, _ = api("GET", f"/v1/batch/jobs/{job['id']}")
    assert done["status"] == "SUCCESS" and (done["succeeded_requests"], done["failed_requests"]) == (1, 3)
    assert [line["custom_id"] for line in output_lines(api, done["output_file"])] == ["a"]
    errors = output_lines(api, done["error_file"])
    assert [e["error"]["message"] for e in errors][0].endswith("line 2: not JSON")
    assert any("inputs" in e["error"]["message"] for e in errors)


def test_redelivered_message_does_not_run_twice(api: Any, services: Any, poller: QueuePoller, fake_sandbox: Any) -> None:
    job = create(api, model="m", requests=[{"custom_id": "x", "body": {"inputs": CODE,
                                                                       "tools": [{"type": "code_interpreter"}]}}])
    services.batch.process(ws(services), job["id"], 0)
    services.batch.process(ws(services), job["id"], 0, receive_count=2)  # the same message again
    poller.drain()
    _, done, _ = api("GET", f"/v1/batch/jobs/{job['id']}")
    assert (done["completed_requests"], done["succeeded_requests"]) == (1, 1) and len(fake_sandbox.codes) == 1
    _, conversations, _ = api("GET", "/v1/conversations")
    assert len(conversations) == 1


def test_a_crash_after_storing_reuses_the_conversation(api: Any, services: Any, poller: QueuePoller,
                                                       fake_sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """On both storages: the worker dies after the conversation was stored, before the request was
    settled; the retry settles it from what was stored, without running the model or the code
    again (the store's conflict alone would still keep one conversation, after running both twice)."""
    job = create(api, model="m", requests=[{"custom_id": "x", "body": {"inputs": CODE,
                                                                       "tools": [{"type": "code_interpreter"}]}}])
    provider = services.conversations.runtime.provider
    model_calls: list[object] = []
    real_stream = provider.stream
    monkeypatch.setattr(provider, "stream", lambda request: (model_calls.append(request), real_stream(request))[1])
    real_settle = services.batch.store.settle
    monkeypatch.setattr(services.batch.store, "settle", lambda *a: (_ for _ in ()).throw(RuntimeError("crash")))
    with pytest.raises(RuntimeError):
        services.batch.process(ws(services), job["id"], 0)  # the crash escapes: no release happens
    monkeypatch.setattr(services.batch.store, "settle", real_settle)
    ran = (len(model_calls), len(fake_sandbox.codes))
    assert ran == (2, 1)  # asked for the code, ran it, answered
    # The worker died holding its claim (the conversation already stored). Once the lease
    # expires the redelivered message may claim again:
    now = batch_module.time.time()
    monkeypatch.setattr(batch_module.time, "time", lambda: now + services.batch.lease_s + 1)
    services.batch.process(ws(services), job["id"], 0, receive_count=2)
    assert (len(model_calls), len(fake_sandbox.codes)) == ran  # nothing ran again
    _, conversations, _ = api("GET", "/v1/conversations")
    assert len(conversations) == 1
    _, done, _ = api("GET", f"/v1/batch/jobs/{job['id']}")
    assert done["status"] == "SUCCESS"
    assert output_lines(api, done["output_file"])[0]["response"]["body"]["conversation_id"] == conversations[0]["id"]


def test_poison_message_fails_after_bounded_tries(api: Any, services: Any, poller: QueuePoller,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    job = create(api, model="m", requests=[{"custom_id": "ok", "body": {"inputs": "hi"}},
                                           {"custom_id": "poison", "body": {"inputs": "boom"}}])
    real_run = services.batch._run

    def run(ws_: str, job_: Any, item: Any) -> Any:
        if item.custom_id == "poison":
            raise RuntimeError("worker bug")
        return real_run(ws_, job_, item)

    monkeypatch.setattr(services.batch, "_run", run)
    poller.drain()
    _, done, _ = api("GET", f"/v1/batch/jobs/{job['id']}")
    assert done["status"] == "SUCCESS" and (done["succeeded_requests"], done["failed_requests"]) == (1, 1)
    (error,) = output_lines(api, done["error_file"])
    assert error["custom_id"] == "poison" and "after 3 attempts" in error["error"]["message"]


def test_dead_letters_count_as_failed_with_the_reason(api: Any, services: Any, poller: QueuePoller) -> None:
    job = create(api, model="m", requests=[{"custom_id": "lost", "body": {"inputs": "hi"}}])
    (message,) = poller.queue.receive(1)  # as SQS's redrive would, by hand
    poller.dlq.send([json.loads(message.body)])  # type: ignore[attr-defined]
    poller.queue.delete(message.receipt)
    poller.drain()
    _, done, _ = api("GET", f"/v1/batch/jobs/{job['id']}")
    assert done["status"] == "FAILED" and "dead-letter" in output_lines(api, done["error_file"])[0]["error"]["message"]


def test_cancel_mid_run(api: Any, services: Any, poller: QueuePoller) -> None:
    job = create(api, model="m", requests=[{"custom_id": f"r{n}", "body": {"inputs": "hi"}} for n in range(4)])
    services.batch.process(ws(services), job["id"], 0)
    code, cancelling, _ = api("POST", f"/v1/batch/jobs/{job['id']}/cancel")
    assert code == 200 and cancelling["status"] == "CANCELLATION_REQUESTED"
    poller.drain()
    _, done, _ = api("GET", f"/v1/batch/jobs/{job['id']}")
    assert done["status"] == "CANCELLED" and (done["succeeded_requests"], done["failed_requests"]) == (1, 3)


def test_timeout_hours_is_honoured(api: Any, poller: QueuePoller, monkeypatch: pytest.MonkeyPatch) -> None:
    job = create(api, model="m", timeout_hours=1, requests=[{"body": {"inputs": "hi"}}])
    now = batch_module.time.time()
    monkeypatch.setattr(batch_module.time, "time", lambda: now + 7200)
    poller.drain()
    _, done, _ = api("GET", f"/v1/batch/jobs/{job['id']}")
    assert done["status"] == "TIMEOUT_EXCEEDED"


def test_a_jsonl_dropped_in_the_inbox_starts_a_job(api: Any, services: Any, poller: QueuePoller) -> None:
    key = f"batch-inbox/{ws(services)}/model/mistral-small-latest/nightly.jsonl"
    boto3.client("s3").put_object(Bucket="agents-api-test", Key=key, Body=b'{"custom_id": "n1", "body": {"inputs": "hi"}}\n')
    event = {"Records": [{"s3": {"bucket": {"name": "agents-api-test"}, "object": {"key": key}}}]}
    result = handler_module("batch_worker").inbox_handler(event, FakeContext())
    (job_id,) = result["jobs"]
    poller.drain()
    _, done, _ = api("GET", f"/v1/batch/jobs/{job_id}")
    assert done["status"] == "SUCCESS" and done["model"] == "mistral-small-latest"
    assert handler_module("batch_worker").inbox_handler(event, FakeContext())["jobs"] == []  # consumed once


def test_api_listing_validation_and_tenancy(api: Any, poller: QueuePoller) -> None:
    job = create(api, model="m", requests=[{"body": {"inputs": "hi"}}])
    _, listed, _ = api("GET", "/v1/batch/jobs", query="status=QUEUED")
    assert [j["id"] for j in listed["data"]] == [job["id"]] and listed["total"] == 1
    assert api("GET", f"/v1/batch/jobs/{job['id']}", key="someone-else")[0] == 404
    code, body, _ = api("POST", "/v1/batch/jobs", {"endpoint": "/v1/chat/completions", "model": "m", "requests": []})
    assert code == 422 and "endpoint" in str(body["message"])
    code, body, _ = api("POST", "/v1/batch/jobs", {"endpoint": "/v1/conversations", "agent_id": "ag_nope",
                                                   "requests": [{"body": {"inputs": "x"}}]})
    assert code == 404


@pytest.mark.parametrize("poller", ["sqlite"], indirect=True)
def test_a_restart_resumes_the_job_and_runs_each_request_once(api: Any, services: Any, poller: QueuePoller,
                                                              fake_sandbox: Any) -> None:
    """The embedded server died with both messages received and request 0 run (its conversation
    stored) but not settled. Its start-up gives the claims and deliveries back; the job then
    finishes, and request 0's code is not run again."""
    job = create(api, model="m", requests=[{"custom_id": f"r{n}", "body": {"inputs": CODE,
                                                                          "tools": [{"type": "code_interpreter"}]}}
                                           for n in range(2)])
    store = services.batch.store
    assert len(poller.queue.receive(10)) == 2
    now = int(batch_module.time.time())
    assert store.claim(ws(services), job["id"], 0, now, now + services.batch.lease_s)
    services.batch._run(ws(services), store.get_job(ws(services), job["id"]), store.get_item(ws(services), job["id"], 0))
    assert len(fake_sandbox.codes) == 1
    # start-up of the new process
    assert (store.release_abandoned_claims(), poller.queue.release_in_flight(), poller.dlq.release_in_flight()) == (1, 2, 0)
    poller.drain()
    _, done, _ = api("GET", f"/v1/batch/jobs/{job['id']}")
    assert (done["status"], done["succeeded_requests"], len(fake_sandbox.codes)) == ("SUCCESS", 2, 2)
    assert len(api("GET", "/v1/conversations")[1]) == 2


def test_a_dead_letter_for_a_request_still_claimed_waits_for_the_lease(api: Any, services: Any,
                                                                         poller: QueuePoller) -> None:
    """A worker died mid-request: its redeliveries were refused while its claim held, and the
    message reached the dead letters. The dead letter is kept (retried) until the lease ends,
    then the request counts as failed and the job finishes (before, the job never did)."""
    import time

    job = create(api, model="m", requests=[{"custom_id": "orphan", "body": {"inputs": "hi"}}])
    now = int(time.time())
    assert services.batch.store.claim(ws(services), job["id"], 0, now, now + 900)  # the worker that died
    (message,) = poller.queue.receive(1)
    poller.dlq.send([json.loads(message.body)])  # type: ignore[attr-defined]
    poller.queue.delete(message.receipt)
    (dead,) = poller.dlq.receive(1)
    event = {"Records": [{"messageId": dead.id, "receiptHandle": dead.receipt, "body": dead.body,
                          "attributes": {"ApproximateReceiveCount": "4"}, "eventSource": "aws:sqs"}]}
    worker = handler_module("batch_worker")
    assert worker.dlq_handler(event, FakeContext(function_name="batch-worker")) == {
        "batchItemFailures": [{"itemIdentifier": dead.id}]}
    _, running, _ = api("GET", f"/v1/batch/jobs/{job['id']}")
    assert running["status"] != "FAILED" and running["completed_requests"] == 0
    services.batch.store.release(ws(services), job["id"], 0)  # the lease ran out
    assert worker.dlq_handler(event, FakeContext(function_name="batch-worker")) == {"batchItemFailures": []}
    _, done, _ = api("GET", f"/v1/batch/jobs/{job['id']}")
    assert done["status"] == "FAILED" and "dead-letter" in output_lines(api, done["error_file"])[0]["error"]["message"]


def test_batch_requests_go_to_sqs_in_one_fair_group_per_workspace(api: Any, services: Any) -> None:
    """SQS fair queues tell tenants apart by MessageGroupId: every request of a job carries its
    workspace's group, so another workspace's backlog does not delay it in AWS either."""
    import hashlib

    url, _ = create_queues("batch-fair")
    services.batch.queue.queue_url = url
    create(api, model="m", requests=[{"custom_id": f"r{n}", "body": {"inputs": "hi"}} for n in range(3)])
    messages = boto3.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                   AttributeNames=["All"])["Messages"]
    groups = {m["Attributes"].get("MessageGroupId") for m in messages}
    assert groups == {hashlib.sha256(ws(services).encode()).hexdigest()}, groups


def test_the_list_filters_by_metadata_and_creation_time_and_orders_either_way(api: Any, poller: QueuePoller) -> None:
    first = create(api, model="m", metadata={"team": "sales"}, requests=[{"body": {"inputs": "hi"}}])
    second = create(api, model="m", metadata={"team": "ops"}, requests=[{"body": {"inputs": "hi"}}])

    def ids(query: str) -> list[str]:
        status, body, _ = api("GET", "/v1/batch/jobs", query=query)
        assert status == 200, body
        assert body["total"] == len(body["data"])
        return [j["id"] for j in body["data"]]

    assert ids('metadata={"team":"sales"}') == [first["id"]]
    assert set(ids("order_by=created")) == {first["id"], second["id"]}
    assert ids("order_by=created") == list(reversed(ids("order_by=-created")))
    assert ids("created_after=2000-01-01T00:00:00Z") != [] and ids("created_after=2999-01-01T00:00:00Z") == []
    for query, param in (("order_by=size", "order_by"), ("created_after=yesterday", "created_after"),
                         ("created_by_me=perhaps", "created_by_me"), ("status=DONE", "status")):
        status, body, _ = api("GET", "/v1/batch/jobs", query=query)
        assert status == 400 and body["param"] == param, body


def test_inline_returns_the_results_themselves(api: Any, poller: QueuePoller) -> None:
    job = create(api, model="m", requests=[{"custom_id": "only", "body": {"inputs": "hi"}}])
    _, waiting, _ = api("GET", f"/v1/batch/jobs/{job['id']}", query="inline=true")
    assert waiting["outputs"] == []  # nothing yet
    poller.drain()
    _, done, _ = api("GET", f"/v1/batch/jobs/{job['id']}", query="inline=true")
    assert [line["custom_id"] for line in done["outputs"]] == ["only"]
    assert done["outputs"] == output_lines(api, done["output_file"])
    _, plain, _ = api("GET", f"/v1/batch/jobs/{job['id']}")
    assert "outputs" not in plain


def test_a_jobs_conversations_carry_its_id_in_their_metadata(api: Any, poller: QueuePoller) -> None:
    """So that a client finds a job's conversations, and the playground keeps them out of its
    chat history; metadata the request gave is kept beside it."""
    job = create(api, model="m", requests=[{"body": {"inputs": "hi", "metadata": {"team": "ops"}}},
                                           {"body": {"inputs": "hello"}}])
    poller.drain()
    _, found, _ = api("GET", "/v1/conversations", query=f'metadata={{"batch_job_id":"{job["id"]}"}}')
    assert sorted(json.dumps(c["metadata"], sort_keys=True) for c in found) == sorted([
        json.dumps({"batch_job_id": job["id"], "team": "ops"}, sort_keys=True),
        json.dumps({"batch_job_id": job["id"]})])
