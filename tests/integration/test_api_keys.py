"""API keys in the cloud: the operator's CLI, the API Gateway authorizer, the handlers, rate limits.

All against moto's DynamoDB with the template's table; the authorizer and the handlers are the
real Lambda handlers, fed the sample events in events/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from agentsapi.services import build_services, use_services
from agentsapi.settings import Settings, get_settings
from cli import api_key
from local import apigw
from tests.conftest import Api, captured_logs, front_end

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture
def keyed(aws: None, fake_sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Services as deployed: only keys from the table (no open mode), rate limit 5 per minute."""
    for name, value in {"AUTH_MODE": "keys", "AUTH_CACHE_TTL_S": "0", "RATE_LIMIT_PER_MINUTE": "5"}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    built = build_services(Settings(), sandbox=fake_sandbox)
    # One fixed moment, a second into a one-minute window: a test's requests must not straddle
    # two windows because the wall clock ticked over a minute (the count would start again).
    built.limiter.clock = lambda: 1_800_000_001.0
    use_services(built)
    yield built
    use_services(None)
    get_settings.cache_clear()


def cli(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    code = api_key.main(list(argv), session=boto3.session.Session())
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


def authorizer(token: str) -> dict[str, Any]:
    event = json.loads((EVENTS / "authorizer" / "token.json").read_text().replace("{api_key}", token))
    get_settings.cache_clear()
    module = apigw.handler_module("authorizer")
    module.authenticator.cache_clear()
    return module.lambda_handler(event, apigw.FakeContext(function_name="authorizer"))


def test_cli_key_opens_its_workspace_and_revocation_closes_it(keyed: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, created = cli("create", "--table", "agents-api-test", "--workspace", "team-a", "--name", "ci", capsys=capsys)
    assert code == 0 and created["api_key"].startswith("agk_") and created["workspace"] == "team-a"
    key = created["api_key"]
    scan = boto3.client("dynamodb").scan(TableName="agents-api-test")["Items"]
    assert key not in json.dumps(scan)  # only the hash is stored

    api = Api(key)
    status, agent, _ = api("POST", "/v1/agents", {"model": "m", "name": "a"})
    assert status == 200
    assert api("GET", f"/v1/agents/{agent['id']}", key="agk_someone-else")[0] == 401

    _, listed = cli("list", "--table", "agents-api-test", capsys=capsys)
    assert [k["key_id"] for k in listed] == [created["key_id"]] and key not in json.dumps(listed)

    code, revoked = cli("revoke", "--table", "agents-api-test", created["key_id"], capsys=capsys)
    assert code == 0 and revoked["revoked_at"] is not None
    status, body, _ = api("GET", f"/v1/agents/{agent['id']}")
    assert status == 401 and body["type"] == "authentication_error" and "revoked" in body["message"]


def test_cli_finds_the_table_from_the_stack_and_rejects_bad_input(keyed: Any, capsys: pytest.CaptureFixture[str]) -> None:
    session = boto3.session.Session()
    cloudformation = session.client("cloudformation")
    stub = Stubber(cloudformation)
    stub.add_response("describe_stacks", {"Stacks": [{
        "StackName": "agents-api", "CreationTime": "2026-11-25T00:00:00Z", "StackStatus": "CREATE_COMPLETE",
        "Outputs": [{"OutputKey": "ApiUrl", "OutputValue": "https://x"},
                    {"OutputKey": "TableName", "OutputValue": "agents-api-test"}]}]}, {"StackName": "agents-api"})

    class Session:
        def client(self, name: str) -> Any:
            return cloudformation if name == "cloudformation" else session.client(name)

    with stub:
        assert api_key.main(["create", "--stack", "agents-api", "--workspace", "team-b", "--rate-limit", "9"],
                            session=Session()) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["rate_limit_per_minute"] == 9
    assert api_key.main(["create", "--table", "agents-api-test", "--workspace", "no spaces"], session=session) == 2
    assert "workspace" in capsys.readouterr().err
    assert api_key.main(["revoke", "--table", "agents-api-test", "key_unknown"], session=session) == 2


def test_authorizer_passes_the_workspace_and_refuses_unknown_or_revoked_keys(keyed: Any) -> None:
    from agentsapi.auth import ApiKeyService

    issued = ApiKeyService(keyed.keys.store).create("team-a", rate_limit_per_minute=2)
    module = apigw.handler_module("authorizer")
    with captured_logs(module.logger) as logs:
        policy = authorizer(issued.key)
        unknown = json.loads((EVENTS / "authorizer" / "token_unknown.json").read_text())
        with pytest.raises(Exception, match="^Unauthorized$"):
            module.lambda_handler(unknown, apigw.FakeContext())
        ApiKeyService(keyed.keys.store).revoke(issued.record.key_id)
        with pytest.raises(Exception, match="^Unauthorized$"):
            authorizer(issued.key)
    assert policy["principalId"] == "team-a"
    assert policy["context"] == {"workspace": "team-a", "rate_limit_per_minute": 2, "key_id": issued.record.key_id}
    statement = policy["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Allow"
    # cached per token for every route, so the policy must cover the whole stage
    assert statement["Resource"] == ["arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/*/*"]
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert [line["reason"] for line in lines if line["message"] == "key refused"] == [
        "Invalid API key", "This API key has been revoked"]
    assert issued.key not in logs.getvalue() and "agk_not-a-key" not in logs.getvalue()


def test_rate_limit_is_per_workspace_with_429_and_retry_after(keyed: Any) -> None:
    from agentsapi.auth import ApiKeyService

    team_a = ApiKeyService(keyed.keys.store).create("team-a").key
    team_b = ApiKeyService(keyed.keys.store).create("team-b").key
    api = Api(team_a)
    for _ in range(5):
        assert api("GET", "/v1/agents")[0] == 200
    before = boto3.client("dynamodb").scan(TableName="agents-api-test")["Count"]
    status, body, headers = api("POST", "/v1/agents", {"model": "m", "name": "over the limit"})
    assert status == 429
    assert body["object"] == "error" and body["type"] == "rate_limit_error" and "5 requests per minute" in body["message"]
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert boto3.client("dynamodb").scan(TableName="agents-api-test")["Count"] == before  # nothing stored
    assert api("GET", "/v1/agents", key=team_b)[0] == 200  # another workspace has its own allowance


def test_the_authorizers_limit_for_a_key_wins_over_the_default(keyed: Any) -> None:
    def call() -> int:
        event = apigw.make_event("GET", "/v1/agents", {}, "", None)
        event["requestContext"]["authorizer"] = {"workspace": "team-c", "rate_limit_per_minute": 2}
        return apigw.invoke("agents", event)["statusCode"]

    assert [call() for _ in range(3)] == [200, 200, 429]


@pytest.fixture
def served(keyed: Any) -> Iterator[str]:
    with front_end() as url:
        yield url


def test_the_sdk_sees_401_for_a_bad_key_and_429_past_the_limit(keyed: Any, served: str) -> None:
    from mistralai.client import Mistral

    from agentsapi.auth import ApiKeyService

    key = ApiKeyService(keyed.keys.store).create("team-sdk", rate_limit_per_minute=3).key
    client = Mistral(api_key=key, server_url=served)
    for _ in range(3):
        client.beta.agents.list()
    with pytest.raises(Exception) as limited:
        client.beta.agents.list()
    assert getattr(limited.value, "status_code", None) == 429
    assert "3 requests per minute" in str(limited.value)
    with pytest.raises(Exception) as refused:
        Mistral(api_key="agk_not-a-key", server_url=served).beta.agents.list()
    assert getattr(refused.value, "status_code", None) == 401


def test_the_stream_function_url_cannot_be_talked_into_another_workspace(keyed: Any) -> None:
    """Behind the function URL there is no authorizer: a forged request context (the header the
    Lambda Web Adapter uses to pass the real one) must not stand in for a key."""
    import httpx

    from agentsapi.auth import ApiKeyService

    victim = Api(ApiKeyService(keyed.keys.store).create("victim").key)
    assert victim("POST", "/v1/conversations", {"model": "m", "inputs": "secret plans"})[0] == 200
    forged = json.dumps({"authorizer": {"workspace": "victim"}, "requestContext": {"authorizer": {"workspace": "victim"}}})
    with front_end("conversations") as base:
        for headers in ({"x-amzn-request-context": forged}, {"x-amzn-request-context": forged, "authorization": "Bearer x"}):
            response = httpx.get(f"{base}/v1/conversations", headers=headers, timeout=10)
            assert response.status_code == 401 and response.json()["type"] == "authentication_error"


def test_concurrent_requests_on_one_front_end_keep_their_own_workspaces(services: Any) -> None:
    """`make serve` handles requests on threads through the same module-level resolver: a request
    arriving while another one's code runs must not inherit the first caller's workspace."""
    import threading

    import httpx

    from agentsapi.sandbox.port import ExecutionResult

    running, release = threading.Event(), threading.Event()

    class SlowSandbox:
        def execute(self, request: Any) -> ExecutionResult:
            running.set()
            release.wait(10)  # until b's request was answered: a's turn is in flight throughout
            return ExecutionResult(status="ok")

    services.conversations.runtime.sandbox = SlowSandbox()
    with front_end() as base:
        url = f"{base}/v1/conversations"

        def start(key: str, inputs: str) -> str:
            response = httpx.post(url, headers={"Authorization": f"Bearer {key}"}, timeout=30,
                                  json={"model": "m", "inputs": inputs, "tools": [{"type": "code_interpreter"}]})
            assert response.status_code == 200, response.text
            return str(response.json()["conversation_id"])

        def listed(key: str) -> list[str]:
            return [c["id"] for c in httpx.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=10).json()]

        slow: dict[str, str] = {}
        runner = threading.Thread(target=lambda: slow.setdefault("id", start("key-a", "```python\nwork()\n```")))
        runner.start()
        assert running.wait(10)  # a's code is running now
        fast = start("key-b", "hello")
        release.set()
        runner.join()
        assert listed("key-a") == [slow["id"]] and listed("key-b") == [fast]


PER_CALLER = 6


def test_many_concurrent_callers_each_write_only_their_own_workspace(services: Any) -> None:
    """A stress version of the above: 8 callers, 6 concurrent creations each (16 at a time), on the
    threaded front end. powertools keeps the current event on its class; the resolver keeps it per
    thread. (15 each found nothing more, on moto's serialised tables, in 2.5 times the time.)"""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    keys = [f"stress-key-{n}" for n in range(8)]
    with front_end() as base:
        url = f"{base}/v1/agents"

        def create(job: tuple[str, int]) -> int:
            key, n = job
            return httpx.post(url, headers={"Authorization": f"Bearer {key}"}, timeout=30,
                              json={"model": "m", "name": f"{key}/{n}"}).status_code

        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(create, [(key, n) for n in range(PER_CALLER) for key in keys]))
        assert statuses == [200] * len(statuses)
        for key in keys:
            names = [a["name"] for a in httpx.get(url, params={"page_size": 100}, timeout=10,
                                                  headers={"Authorization": f"Bearer {key}"}).json()]
            assert sorted(names) == sorted(f"{key}/{n}" for n in range(PER_CALLER)), key


def test_created_by_me_lists_the_batch_jobs_of_the_callers_key_among_its_workspaces(keyed: Any) -> None:
    from agentsapi.auth import ApiKeyService
    from local.aws import create_queues

    keyed.batch.queue.queue_url = create_queues("batch-keys-test", max_receives=3)[0]
    mine, colleague = (ApiKeyService(keyed.keys.store).create("team-a").key for _ in range(2))
    jobs = {}
    for key in (mine, colleague):
        status, job, _ = Api(key)("POST", "/v1/batch/jobs", {"endpoint": "/v1/conversations", "model": "m",
                                                            "requests": [{"body": {"inputs": "hi"}}]})
        assert status == 200, job
        jobs[key] = job["id"]
    _, everyone, _ = Api(mine)("GET", "/v1/batch/jobs")
    assert sorted(j["id"] for j in everyone["data"]) == sorted(jobs.values())  # one workspace: both
    _, own, _ = Api(mine)("GET", "/v1/batch/jobs", query="created_by_me=true")
    assert [j["id"] for j in own["data"]] == [jobs[mine]] and own["total"] == 1
    assert "created_by" not in own["data"][0]  # internal
