"""Bad input behaves the same on both storages: the same request through the real handlers on
DynamoDB (moto) and on the embedded SQLite store gets the same status and body, and changes
nothing that was stored."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api

BIG = "x" * 450_000  # over an entry's limit (DynamoDB items stop at 400 KB), under the request's


@pytest.fixture
def storages(aws: None, fake_sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    from agentsapi.services import build_services, embedded_storage
    from agentsapi.settings import Settings

    monkeypatch.setenv("MAX_REQUEST_BYTES", "1000000")
    settings = Settings()
    embedded = settings.model_copy(update={"storage": "sqlite", "data_dir": str(tmp_path / "data")})
    return {"dynamodb": build_services(settings, sandbox=fake_sandbox),
            "sqlite": build_services(embedded, sandbox=fake_sandbox, storage=embedded_storage(embedded))}


def both(storages: dict[str, Any], method: str, path: str, body: Any = None, query: str = "",
         raw: str | None = None) -> dict[str, tuple[int, str]]:
    """The same request on each storage: status and body, ids masked."""
    from agentsapi.services import use_services

    answers = {}
    for name, services in storages.items():
        use_services(services)
        try:
            status, payload, _ = Api()(method, path.format(**services.ids) if hasattr(services, "ids") else path,
                                       body, query=query, raw=raw)
        finally:
            use_services(None)
        answers[name] = (status, re.sub(r"\b(conv|msg|tool_exec)_[0-9a-z]+", "<id>", str(payload)))
    return answers


def stored(services: Any, ws: str) -> list[Any]:
    conversations = services.store.list_conversations(ws, 100, None).items
    return [(c.id, c.entry_count, len(services.store.get_entries(ws, c.id))) for c in conversations]


def test_bad_input_gets_the_same_answer_on_both_storages_and_changes_nothing(storages: dict[str, Any]) -> None:
    from agentsapi.services import use_services

    workspace = {}
    for services in storages.values():  # one conversation of two entries on each
        use_services(services)
        code, started, _ = Api()("POST", "/v1/conversations", {"model": "m", "inputs": "hello"})
        use_services(None)
        assert code == 200
        services.ids = {"conversation": started["conversation_id"]}
        workspace[id(services)] = services.keys.authenticate("Bearer test-key").workspace
    before = {name: stored(s, workspace[id(s)]) for name, s in storages.items()}

    cases = [
        ("POST", "/v1/conversations", {"model": "m", "inputs": BIG}, "", None),
        ("POST", "/v1/conversations/{conversation}", {"inputs": BIG}, "", None),
        ("POST", "/v1/conversations/{conversation}", {"inputs": [{"role": "user", "content": "a"}] * 3 +
                                                      [{"role": "user", "content": BIG}]}, "", None),
        ("POST", "/v1/conversations/conv_unknown", {"inputs": "hi"}, "", None),
        ("GET", "/v1/conversations", None, "page=abc", None),
        ("POST", "/v1/conversations/{conversation}", None, "", '{"inputs": '),
        ("POST", "/v1/conversations/{conversation}", {"inputs": "hi", "session_ref": "sessions/x"}, "", None),
    ]
    for method, path, body, query, raw in cases:
        answers = both(storages, method, path, body, query, raw)
        assert answers["dynamodb"] == answers["sqlite"], (path, answers)
        assert 400 <= answers["sqlite"][0] < 500, answers
    big = both(storages, "POST", "/v1/conversations", {"model": "m", "inputs": BIG})["sqlite"]
    assert big[0] == 413 and "inputs[0]" in big[1] and "MAX_ENTRY_BYTES" in big[1]
    assert {name: stored(s, workspace[id(s)]) for name, s in storages.items()} == before
