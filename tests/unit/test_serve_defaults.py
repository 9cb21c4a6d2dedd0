"""`make serve`'s embedded defaults: where any bearer token is a workspace, a rate limit is on."""

from __future__ import annotations

import pytest

from local import serve


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """_defaults() sets many variables: it works on a copy of the environment, put back afterwards."""
    import os

    copy = {k: v for k, v in os.environ.items()
            if k not in ("AUTH_MODE", "API_KEYS", "RATE_LIMIT_PER_MINUTE", "SANDBOX_WORKERS", "SANDBOX_WORKER_CPUS")}
    monkeypatch.setattr(os, "environ", copy)
    return monkeypatch


@pytest.mark.parametrize(("auth_mode", "api_keys", "limit"), [
    ("auto", None, str(serve.OPEN_MODE_RATE_LIMIT)),  # any token: on
    ("open", None, str(serve.OPEN_MODE_RATE_LIMIT)),
    ("auto", "k1,k2", None),  # keys only: each key is a person the operator chose
    ("keys", None, None),
])
def test_a_rate_limit_is_on_wherever_any_token_is_accepted(clean_env: pytest.MonkeyPatch, auth_mode: str,
                                                           api_keys: str | None, limit: str | None) -> None:
    import os

    os.environ["AUTH_MODE"] = auth_mode
    if api_keys:
        os.environ["API_KEYS"] = api_keys
    serve._defaults()
    assert os.environ.get("RATE_LIMIT_PER_MINUTE") == limit


def test_an_operators_own_limit_wins(clean_env: pytest.MonkeyPatch) -> None:
    import os

    os.environ["RATE_LIMIT_PER_MINUTE"] = "0"
    serve._defaults()
    assert os.environ["RATE_LIMIT_PER_MINUTE"] == "0"


def test_each_worker_gets_the_cores_shared_out_and_at_least_one(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setattr(serve.os, "cpu_count", lambda: 8)
    assert serve.default_worker_cpus(8) == 1.0 and serve.default_worker_cpus(2) == 4.0
    clean_env.setattr(serve.os, "cpu_count", lambda: 2)
    assert serve.default_worker_cpus(4) == 1.0
