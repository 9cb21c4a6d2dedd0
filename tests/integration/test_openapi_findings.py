"""What the conformance run against Mistral's OpenAPI description found (tests/conformance/), each
as its own regression test: the description's own inputs are served, and nothing stored breaks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Api

JSON_SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {
    "name": "answer", "schema": {"type": "object", "properties": {"value": {"type": "integer"}}}}}


@pytest.fixture(params=["dynamodb", "sqlite"])
def api(request: pytest.FixtureRequest, aws: None, fake_sandbox: Any, tmp_path: Any) -> Iterator[Api]:
    """The real handlers on either storage (SQLite refused numbers DynamoDB took)."""
    from agentsapi.services import build_services, embedded_storage, use_services
    from agentsapi.settings import Settings

    settings = Settings()
    if request.param == "sqlite":
        settings = settings.model_copy(update={"storage": "sqlite", "data_dir": str(tmp_path / "data")})
        use_services(build_services(settings, sandbox=fake_sandbox, storage=embedded_storage(settings)))
    else:
        use_services(build_services(settings, sandbox=fake_sandbox))
    try:
        yield Api()
    finally:
        use_services(None)


def agent(api: Any, **fields: Any) -> dict[str, Any]:
    status, body, _ = api("POST", "/v1/agents", {"model": "m", "name": "n", **fields})
    assert status == 200, body
    return body


def test_an_agent_with_a_json_schema_response_format_is_created_and_read_back_as_sent(api: Any) -> None:
    created = agent(api, completion_args={"response_format": JSON_SCHEMA_FORMAT})
    status, read, _ = api("GET", f"/v1/agents/{created['id']}")
    assert status == 200
    for body in (created, read):
        json_schema = body["completion_args"]["response_format"]["json_schema"]
        assert json_schema["schema"] == JSON_SCHEMA_FORMAT["json_schema"]["schema"]
        assert "schema_" not in json_schema
        # The description types strict as a boolean (default false): never echoed as null.
        assert json_schema["strict"] is False
    status, updated, _ = api("PATCH", f"/v1/agents/{created['id']}", {"description": "d"})
    assert status == 200, updated
    assert updated["completion_args"]["response_format"]["json_schema"]["schema"]["type"] == "object"


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("name", None, "n"),  # an agent always has a name and a model: null leaves them as they are
    ("model", None, "m"),
    ("instructions", None, None),  # anything else: null sets it back to its default
    ("description", None, None),
    ("guardrails", None, []),
    ("handoffs", None, None),
    ("metadata", None, None),
    ("deployment_chat", None, False),
    ("tools", None, []),
    ("completion_args", None, "defaults"),
])
def test_patching_an_agent_with_an_explicit_null_is_not_a_server_error(api: Any, field: str, value: Any,
                                                                       expected: Any) -> None:
    created = agent(api, instructions="be brief", description="d", metadata={"k": "v"},
                    tools=[{"type": "code_interpreter"}], completion_args={"temperature": 0.5})
    status, body, _ = api("PATCH", f"/v1/agents/{created['id']}", {field: value})
    assert status == 200, body
    if expected == "defaults":
        assert body[field]["temperature"] is None and body[field]["tool_choice"] == "auto"
    else:
        assert body[field] == expected
    assert body["version"] == 1


TOO_BIG = "99999999999999999999"


@pytest.mark.parametrize(("method", "path", "query", "body"), [
    ("PATCH", "/v1/agents/{id}/version", f"version={TOO_BIG}", None),
    ("PUT", "/v1/agents/{id}/aliases", f"alias=prod&version={TOO_BIG}", None),
    ("GET", "/v1/agents/{id}", f"agent_version={TOO_BIG}", None),
    ("GET", "/v1/agents/{id}/versions/" + TOO_BIG, "", None),
    ("GET", "/v1/agents/{id}/versions/-1", "", None),
])
def test_a_version_number_no_agent_can_have_is_a_404_naming_it(api: Any, method: str, path: str, query: str,
                                                               body: Any) -> None:
    created = agent(api)
    status, error, _ = api(method, path.format(id=created["id"]), body, query=query)
    assert status == 404, error
    assert "version" in error["message"].lower()
    status, still, _ = api("GET", f"/v1/agents/{created['id']}")
    assert status == 200 and still["version"] == 0


def test_tool_execution_entries_carry_no_null_tool_call_id_and_name_their_function(api: Any) -> None:
    status, started, _ = api("POST", "/v1/conversations", {"model": "m", "inputs": [
        {"type": "message.input", "role": "user", "content": "run"},
        {"type": "tool.execution", "name": "code_interpreter", "arguments": "{\"code\": \"print(1)\"}",
         "info": {"code": "print(1)", "code_output": "1\n"}},
    ]})
    assert status == 200, started
    status, history, _ = api("GET", f"/v1/conversations/{started['conversation_id']}/history")
    executions = [e for e in history["entries"] if e["type"] == "tool.execution"]
    assert executions
    for execution in executions:
        assert "tool_call_id" not in execution, execution
        assert execution["function"] == "code_interpreter", execution


@pytest.mark.parametrize("method", ["TRACE", "QUERY", "CONNECT", "FOO"])
def test_an_unsupported_method_is_a_405_in_the_apis_error_format(services: Any, method: str) -> None:
    import httpx

    from tests.conftest import front_end

    with front_end("agents") as url:
        response = httpx.request(method, f"{url}/v1/agents", headers={"Authorization": "Bearer k"})
    assert response.status_code == 405, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "GET" in response.headers["allow"] and "POST" in response.headers["allow"]
    assert method in response.json()["message"]


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("PUT", "/v1/agents", "GET, POST"),
    ("DELETE", "/v1/files", "GET, POST"),
    ("POST", "/v1/agents/ag_1/versions", "GET"),
    ("PATCH", "/v1/usage", "GET"),
    ("OPTIONS", "/v1/agents/pages", "GET"),  # not an agent id: the static path's methods only
])
def test_a_method_a_path_does_not_have_is_a_405_with_allow_and_an_unknown_path_a_404(
        api: Any, method: str, path: str, allowed: str) -> None:
    status, body, headers = api(method, path, {})
    assert (status, headers.get("Allow")) == (405, allowed), body
    assert body["object"] == "error" and body["param"] == "method"
    status, body, _ = api("GET", "/v1/agents/ag_1/nothing/here")
    assert status == 404 and body["message"] == "No route for GET /v1/agents/ag_1/nothing/here"


def test_the_agents_lists_filter_by_name_search_id_source_deployment_and_metadata(api: Any) -> None:
    """Each filter of Mistral's description narrows both lists (pages and tokens), on each agent's
    active version."""
    first = agent(api, name="Sales analyst", metadata={"team": "sales"})
    second = agent(api, name="Support bot", metadata={"team": "support"})
    api("PATCH", f"/v1/agents/{second['id']}", {"deployment_chat": True})

    def names(query: str) -> list[str]:
        answers = []
        for path in ("/v1/agents", "/v1/agents/pages"):
            status, body, _ = api("GET", path, query=query)
            assert status == 200, body
            answers.append(sorted(a["name"] for a in (body["data"] if isinstance(body, dict) else body)))
        assert answers[0] == answers[1], (query, answers)
        return answers[0]

    assert names("") == ["Sales analyst", "Support bot"]
    assert names("name=Support%20bot") == ["Support bot"]
    assert names("name=Support") == []  # the name exactly
    assert names("search=ANALYST") == ["Sales analyst"]
    assert names(f"search={first['id'][-8:]}") == ["Sales analyst"]  # or a part of the id
    assert names(f"id={second['id']}") == ["Support bot"]
    assert names("sources=api") == ["Sales analyst", "Support bot"]
    assert names("sources=playground") == []
    assert names("deployment_chat=true") == ["Support bot"]
    assert names("deployment_chat=false") == ["Sales analyst"]
    assert names('metadata={"team":"sales"}') == ["Sales analyst"]
    # Filters apply before paging: the newest agent is the other one.
    status, body, _ = api("GET", "/v1/agents", query="page_size=1&page=0&name=Sales%20analyst")
    assert [a["name"] for a in body] == ["Sales analyst"], body
    for query, param in (("deployment_chat=AAA", "deployment_chat"), ("sources=robot", "sources")):
        status, body, _ = api("GET", "/v1/agents", query=query)
        assert status == 400 and body["param"] == param, body


def test_a_version_path_segment_is_a_number_or_an_alias_and_anything_else_a_404(api: Any) -> None:
    created = agent(api)
    api("PATCH", f"/v1/agents/{created['id']}", {"description": "v1"})
    assert api("PUT", f"/v1/agents/{created['id']}/aliases", query="alias=stable&version=0")[0] == 200
    assert api("GET", f"/v1/agents/{created['id']}/versions/1")[1]["description"] == "v1"
    assert api("GET", f"/v1/agents/{created['id']}/versions/stable")[1]["version"] == 0
    status, error, _ = api("GET", f"/v1/agents/{created['id']}/versions/nightly")
    assert status == 404 and "nightly" in error["message"], error


def test_guardrails_are_validated_as_the_description_types_them_and_echoed_in_full(api: Any, services: Any) -> None:
    guardrail = {"moderation_llm_v2": {"custom_category_thresholds": {"pii": 0.2}, "action": "block"}}
    created = agent(api, guardrails=[guardrail])
    [echoed] = created["guardrails"]
    assert echoed["moderation_llm_v2"]["custom_category_thresholds"]["pii"] == 0.2
    assert echoed["moderation_llm_v2"]["model_name"] == "mistral-moderation-2603" and echoed["block_on_error"] is False
    for wrong, field in (({"moderation_llm_v1": {"action": "shout"}}, "action"),
                         ({"moderation_llm_v1": {"custom_category_thresholds": {"jailbreaking": 0.5}}}, "jailbreaking"),
                         ({"moderation_llm_v2": {"": {"": False}}}, "moderation_llm_v2")):
        status, error, _ = api("POST", "/v1/agents", {"model": "m", "name": "n", "guardrails": [wrong]})
        assert status == 422 and field in json.dumps(error["detail"]), error


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_json_route_answers_a_body_of_another_media_type_with_a_415(api: Any, content_type: str) -> None:
    status, error, _ = api("POST", "/v1/agents", raw='{"model": "m", "name": "n"}', headers={"content-type": content_type})
    assert status == 415 and error["param"] == "Content-Type" and content_type in error["message"], error
    assert api("GET", "/v1/agents")[1] == []  # nothing stored
    status, _, _ = api("POST", "/v1/agents", raw='{"model": "m", "name": "n"}',
                       headers={"content-type": "application/json; charset=utf-8"})
    assert status == 200


def test_each_agent_version_carries_the_time_it_was_made(api: Any) -> None:
    """The playground's versions list showed one time for every version: each version read as
    such (listed, by number, by alias) says when it was made; the agent, when it last changed."""
    import time

    created = agent(api)
    time.sleep(0.02)
    api("PATCH", f"/v1/agents/{created['id']}", {"description": "v1"})
    time.sleep(0.02)
    latest = api("PATCH", f"/v1/agents/{created['id']}", {"description": "v2"})[1]
    listed = {v["version"]: v for v in api("GET", f"/v1/agents/{created['id']}/versions")[1]}
    made = [listed[n]["updated_at"] for n in (0, 1, 2)]
    assert made == sorted(made) and len(set(made)) == 3, made
    assert made[0] == created["updated_at"] and made[2] == latest["updated_at"]
    assert {v["created_at"] for v in listed.values()} == {created["created_at"]}  # the agent's creation
    assert api("GET", f"/v1/agents/{created['id']}/versions/1")[1]["updated_at"] == made[1]
    assert api("GET", f"/v1/agents/{created['id']}", query="agent_version=0")[1]["updated_at"] == made[0]
