"""The ``metadata`` filter of list routes (conversations, agents): a JSON object in the query whose
every key must hold the same value in the item's metadata."""

from __future__ import annotations

import json
from typing import Any


def metadata_matches(stored: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    stored = stored or {}
    return all(stored.get(k) == v for k, v in wanted.items())


def parse_metadata_filter(raw: str | None) -> dict[str, Any] | None:
    """The SDK sends a JSON sentinel string when no filter is given: anything not an object is ignored."""
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) and value else None
