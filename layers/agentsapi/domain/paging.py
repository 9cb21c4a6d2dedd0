"""Offset paging (``page``/``page_size``, as Mistral's list endpoints take) over the store's
token-paged listings (newest first), with an optional filter applied before counting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..store import Page

MAX_PAGE_SIZE = 1000
Fetch = Callable[[int, "str | None"], Page]


def offset_page(fetch: Fetch, page: int, page_size: int, keep: Callable[[Any], bool] | None = None) -> list[Any]:
    """Items ``page * page_size`` to ``(page + 1) * page_size`` among those ``keep`` accepts."""
    skip, token = page * page_size, None
    collected: list[Any] = []
    while True:
        # Unfiltered, ask for exactly what is still needed; filtered, the ratio is unknown.
        batch = fetch(MAX_PAGE_SIZE if keep else min(MAX_PAGE_SIZE, skip + page_size - len(collected)), token)
        for item in batch.items:
            if keep is not None and not keep(item):
                continue
            if skip:
                skip -= 1
                continue
            collected.append(item)
        if len(collected) >= page_size or batch.next_token is None:
            return collected[:page_size]
        token = batch.next_token


def all_matching(fetch: Fetch, keep: Callable[[Any], bool]) -> list[Any]:
    """Every item ``keep`` accepts (for listings that report a total)."""
    token: str | None = None
    matching: list[Any] = []
    while True:
        batch = fetch(MAX_PAGE_SIZE, token)
        matching.extend(item for item in batch.items if keep(item))
        if batch.next_token is None:
            return matching
        token = batch.next_token
