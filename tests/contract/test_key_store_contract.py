"""The KeyStore port's contract, run on both adapters: DynamoDB (moto) and SQLite (a real file)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentsapi.adapters.dynamodb_keys import DynamoDBKeyStore
from agentsapi.adapters.sqlite.keys import SqliteKeyStore
from agentsapi.auth import ApiKeyService, Authenticator, KeyStore, hash_key
from agentsapi.errors import Conflict, Unauthorized
from agentsapi.models.api_keys import ApiKeyRecord
from tests.contract.backends import BACKENDS, TABLE, adapter_on


@pytest.fixture(params=BACKENDS)
def keys(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyStore]:
    yield from adapter_on(request, tmp_path, lambda client: DynamoDBKeyStore(client, TABLE), SqliteKeyStore)


def record(key_id: str, created: int, workspace: str = "team-a", **fields: object) -> ApiKeyRecord:
    return ApiKeyRecord(key_id=key_id, workspace=workspace, hint="agk_abcd...wxyz", created_at=created, **fields)  # type: ignore[arg-type]


def test_a_key_is_found_by_its_hash_only(keys: KeyStore) -> None:
    stored = record("key_1", 100, name="ci ✓ 日本", rate_limit_per_minute=7)
    keys.put_key(hash_key("agk_secret"), stored)
    assert keys.get_key(hash_key("agk_secret")) == stored
    assert keys.get_key(hash_key("agk_other")) is None


def test_a_hash_is_written_once(keys: KeyStore) -> None:
    keys.put_key("h1", record("key_1", 100))
    with pytest.raises(Conflict):
        keys.put_key("h1", record("key_2", 200, workspace="team-b"))
    assert keys.get_key("h1").key_id == "key_1"
    assert [k.key_id for k in keys.list_keys()] == ["key_1"]


def test_keys_are_listed_oldest_first_ties_by_id(keys: KeyStore) -> None:
    for digest, key_id, created in [("h1", "key_b", 200), ("h2", "key_c", 100), ("h3", "key_a", 200), ("h4", "key_d", 5)]:
        keys.put_key(digest, record(key_id, created))
    assert [k.key_id for k in keys.list_keys()] == ["key_d", "key_c", "key_a", "key_b"]


def test_revoking_marks_the_key_once_and_unknown_ids_are_none(keys: KeyStore) -> None:
    keys.put_key("h1", record("key_1", 100))
    keys.put_key("h2", record("key_2", 100))
    revoked = keys.revoke_key("key_1", now=500)
    assert revoked is not None and revoked.revoked_at == 500
    assert keys.get_key("h1") == revoked
    assert keys.revoke_key("key_1", now=900).revoked_at == 500  # revoking again keeps the first time
    assert keys.get_key("h2").revoked_at is None
    assert keys.revoke_key("key_unknown", now=500) is None
    assert [k.revoked_at for k in keys.list_keys()] == [500, None]


def test_the_authenticator_and_the_key_service_work_on_it(keys: KeyStore) -> None:
    service = ApiKeyService(keys, clock=lambda: 1_000.0)
    issued = service.create("team-a", name="ci", rate_limit_per_minute=3)
    principal = Authenticator(None, keys, mode="keys", cache_ttl_s=0).authenticate(f"Bearer {issued.key}")
    assert (principal.workspace, principal.rate_limit_per_minute) == ("team-a", 3)
    assert issued.key not in repr(service.list())
    service.revoke(issued.record.key_id)
    with pytest.raises(Unauthorized, match="revoked"):
        Authenticator(None, keys, mode="keys", cache_ttl_s=0).authenticate(f"Bearer {issued.key}")
