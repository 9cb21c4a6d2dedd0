from __future__ import annotations

import pytest

from agentsapi.auth import KeyRing, workspace_of
from agentsapi.errors import Unauthorized


def test_open_keyring_gives_each_token_its_own_workspace() -> None:
    ring = KeyRing(None)
    assert ring.authenticate("Bearer a") == workspace_of("a") != ring.authenticate("Bearer b")


@pytest.mark.parametrize("header", [None, "", "Bearer ", "Basic abc", "token"])
def test_missing_or_malformed_header_is_refused(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        KeyRing(None).authenticate(header)


def test_configured_keys_only_and_never_stored_in_clear() -> None:
    ring = KeyRing("k1, k2")
    assert ring.authenticate("Bearer k2") == workspace_of("k2")
    assert "k1" not in repr(ring.hashes)
    with pytest.raises(Unauthorized):
        ring.authenticate("Bearer k3")
