from __future__ import annotations

import pytest

from agentsapi.auth import ApiKeyService, Authenticator, hash_key, workspace_of
from agentsapi.errors import InvalidRequest, Unauthorized
from agentsapi.models.api_keys import ApiKeyRecord


class MemoryKeys:
    def __init__(self) -> None:
        self.items: dict[str, ApiKeyRecord] = {}
        self.reads = 0

    def get_key(self, key_hash: str) -> ApiKeyRecord | None:
        self.reads += 1
        return self.items.get(key_hash)

    def put_key(self, key_hash: str, record: ApiKeyRecord) -> None:
        self.items[key_hash] = record

    def list_keys(self) -> list[ApiKeyRecord]:
        return list(self.items.values())

    def revoke_key(self, key_id: str, now: int) -> ApiKeyRecord | None:
        for digest, record in self.items.items():
            if record.key_id == key_id:
                self.items[digest] = record.model_copy(update={"revoked_at": now})
                return self.items[digest]
        return None


def test_open_mode_gives_each_token_its_own_workspace() -> None:
    auth = Authenticator(None, None, mode="auto")
    assert auth.authenticate("Bearer a").workspace == workspace_of("a") != auth.authenticate("Bearer b").workspace


@pytest.mark.parametrize("header", [None, "", "Bearer ", "Basic abc", "token"])
def test_missing_or_malformed_header_is_refused(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        Authenticator(None, None, mode="auto").authenticate(header)


def test_closed_by_default() -> None:
    with pytest.raises(Unauthorized):
        Authenticator(None, None).authenticate("Bearer anything")


def test_env_keys_only_and_never_kept_in_clear() -> None:
    auth = Authenticator("k1, k2", None)
    assert auth.authenticate("Bearer k2").workspace == workspace_of("k2")
    assert "k1" not in repr(auth.env_hashes)
    with pytest.raises(Unauthorized):
        auth.authenticate("Bearer k3")


def test_created_key_opens_its_workspace_with_its_limit_and_only_the_hash_is_stored() -> None:
    keys = MemoryKeys()
    issued = ApiKeyService(keys).create("team-a", name="ci", rate_limit_per_minute=7)
    assert issued.key.startswith("agk_") and len(issued.key) > 40
    assert list(keys.items) == [hash_key(issued.key)]
    assert issued.key not in issued.record.model_dump_json()
    principal = Authenticator(None, keys, mode="keys").authenticate(f"Bearer {issued.key}")
    assert (principal.workspace, principal.rate_limit_per_minute) == ("team-a", 7)
    with pytest.raises(Unauthorized):
        Authenticator(None, keys, mode="keys").authenticate("Bearer agk_guessed")


def test_revoked_key_is_refused_once_the_cache_expires_even_in_open_mode() -> None:
    keys = MemoryKeys()
    service = ApiKeyService(keys)
    issued = service.create("team-a")
    now = [0.0]
    auth = Authenticator(None, keys, mode="open", cache_ttl_s=60, clock=lambda: now[0])
    assert auth.authenticate(f"Bearer {issued.key}").workspace == "team-a"
    service.revoke(issued.record.key_id)
    assert auth.authenticate(f"Bearer {issued.key}").workspace == "team-a"  # cached for up to a minute
    assert keys.reads == 1
    now[0] = 61
    with pytest.raises(Unauthorized, match="revoked"):
        auth.authenticate(f"Bearer {issued.key}")


@pytest.mark.parametrize("workspace", ["", "-x", "a b", "x" * 65, "ws/../other"])
def test_bad_workspace_names_are_refused(workspace: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        ApiKeyService(MemoryKeys()).create(workspace)
    assert caught.value.param == "workspace"


def test_revoking_an_unknown_key_names_the_field() -> None:
    with pytest.raises(InvalidRequest) as caught:
        ApiKeyService(MemoryKeys()).revoke("key_nope")
    assert caught.value.param == "key_id"
