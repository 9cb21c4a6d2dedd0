"""The two storage backends every contract test runs on: moto's DynamoDB with the template's table,
and a real SQLite file under the test's tmp_path (fixtures live in each test file, built from these)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest

from agentsapi.adapters.sqlite.db import Database
from agentsapi.adapters.sqlite.store import STORE_MIGRATIONS

BACKENDS = ["dynamodb", "sqlite"]
TABLE = "agents-api-test"  # what tests/conftest.py's `aws` fixture creates


def dynamodb_client(request: pytest.FixtureRequest) -> Any:
    """A DynamoDB client on moto (the shared `aws` fixture: the table from template.yaml)."""
    request.getfixturevalue("aws")
    return boto3.client("dynamodb")


def sqlite_database(tmp_path: Path) -> Database:
    return Database(tmp_path / "data" / "agents.db", STORE_MIGRATIONS)


Port = TypeVar("Port")


def adapter_on(request: pytest.FixtureRequest, tmp_path: Path, on_dynamodb: Callable[[Any], Port],
               on_sqlite: Callable[[Database], Port]) -> Iterator[Port]:
    """The port's adapter on the backend the test is parametrized with (closed afterwards)."""
    if request.param == "dynamodb":
        yield on_dynamodb(dynamodb_client(request))
        return
    db = sqlite_database(tmp_path)
    yield on_sqlite(db)
    db.close()
