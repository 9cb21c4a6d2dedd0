from __future__ import annotations

from agentsapi.domain.paging import all_matching, offset_page
from agentsapi.store import Page

ITEMS = list(range(25))  # newest first, served three at a time, as DynamoDB pages would come


def fetch(limit: int, token: str | None) -> Page:
    assert 1 <= limit <= 1000  # DynamoDB's Limit must be positive; a zero would loop forever
    start = int(token or 0)
    end = min(start + min(limit, 3), len(ITEMS))
    return Page(items=ITEMS[start:end], next_token=str(end) if end < len(ITEMS) else None)  # type: ignore[arg-type]


def test_pages_cross_store_pages_and_stop_at_the_end() -> None:
    assert offset_page(fetch, 0, 4) == [0, 1, 2, 3]
    assert offset_page(fetch, 2, 4) == [8, 9, 10, 11]
    assert offset_page(fetch, 6, 4) == [24]
    assert offset_page(fetch, 7, 4) == []


def test_filter_applies_before_counting() -> None:
    even = lambda n: n % 2 == 0  # noqa: E731
    assert offset_page(fetch, 1, 3, keep=even) == [6, 8, 10]
    assert all_matching(fetch, even) == list(range(0, 25, 2))
