"""The pure bounds on client input (limits.py) and the header built from stored names (headers.py)."""

from __future__ import annotations

import pytest

from agentsapi.http.headers import content_disposition
from agentsapi.limits import MAX_NAME_BYTES, file_name_problem, too_deep, usable_file_name


def test_nesting_is_counted_per_container_and_the_path_names_the_first_too_deep() -> None:
    assert MAX_NAME_BYTES == 255
    assert too_deep({}, 1) is None and too_deep([], 1) is None and too_deep("text", 1) is None
    assert too_deep({"a": {}}, 1) == ["a"] and too_deep({"a": {}}, 2) is None
    assert too_deep([[1, [2]]], 2) == [0, 1] and too_deep([[1, [2]]], 3) is None
    assert too_deep({"a": [{"b": {}}]}, 3) == ["a", 0, "b"]
    assert too_deep({"k": 1, "n": [1, 2]}, 2) is None  # scalars add no level
    assert too_deep({7: {}}, 1) == ["7"]  # keys are named as text
    deep: list[object] = []
    node = deep
    for _ in range(100_000):  # iterative: a hostile document cannot exhaust the stack
        node.append([])
        node = node[0]  # type: ignore[assignment]
    assert too_deep(deep, 64) == [0] * 64


@pytest.mark.parametrize(("name", "problem"), [
    ("", "is empty"), (".", "is empty"), ("..", "is empty"),
    ("\ud800.csv", "is not valid UTF-8"),
    ("é" * 128, "is 256 bytes of UTF-8; at most 255 are allowed"),
    ("a/b.csv", "contains a path separator (/)"),
    ("a\nb", "contains a control character (CR, LF, NUL, ...)"), ("a\rb", "contains a control character (CR, LF, NUL, ...)"),
    ("a\0b", "contains a control character (CR, LF, NUL, ...)"), ("a\x1fb", "contains a control character (CR, LF, NUL, ...)"),
    ("a\x7fb", "contains a control character (CR, LF, NUL, ...)"), ("a\x9fb", "contains a control character (CR, LF, NUL, ...)"),
])
def test_names_no_file_can_have_are_named_with_the_reason(name: str, problem: str) -> None:
    assert file_name_problem(name) == problem


@pytest.mark.parametrize("name", ["data.csv", "é" * 127 + "a", "a" * 255, "...", "a b\u00a0c.txt", " ", "x\x20y"])
def test_plain_names_are_fine(name: str) -> None:
    assert file_name_problem(name) is None


def test_an_unusable_name_falls_back_keeping_a_plain_extension() -> None:
    assert usable_file_name("plot.png", "output_1") == ("plot.png", None)
    assert usable_file_name("a\nb.png", "output_1") == ("output_1.png", "contains a control character (CR, LF, NUL, ...)")
    assert usable_file_name("a/b", "output_2")[0] == "output_2"  # no extension to keep
    assert usable_file_name("a\n.png", "output_3")[0] == "output_3.png"
    assert usable_file_name("\n.png", "output_4")[0] == "output_4.png"
    assert usable_file_name("a\nb.tar-gz", "output_5")[0] == "output_5"  # not alphanumeric
    assert usable_file_name("a\nb.é", "output_6")[0] == "output_6"  # not ASCII
    assert usable_file_name("a\nb." + "x" * 11, "output_7")[0] == "output_7"  # longer than 10
    assert usable_file_name("a\nb." + "x" * 10, "output_8")[0] == "output_8." + "x" * 10
    assert usable_file_name("a\nb.", "output_9")[0] == "output_9"


def test_content_disposition_is_safe_for_any_stored_name() -> None:
    assert content_disposition("XY.csv") == "attachment; filename=\"XY.csv\"; filename*=UTF-8''XY.csv"
    assert content_disposition("report.csv") == "attachment; filename=\"report.csv\"; filename*=UTF-8''report.csv"
    assert content_disposition("a b.csv", "inline") == "inline; filename=\"a b.csv\"; filename*=UTF-8''a%20b.csv"
    assert content_disposition("") == "attachment; filename=\"download\"; filename*=UTF-8''download"
    injected = content_disposition('x"\r\nSet-Cookie: a=b\\.txt')
    assert "\r" not in injected and "\n" not in injected
    assert injected == ("attachment; filename=\"x___Set-Cookie: a=b_.txt\"; "
                        "filename*=UTF-8''x%22%0D%0ASet-Cookie%3A%20a%3Db%5C.txt")
    assert content_disposition("日本.csv") == "attachment; filename=\"__.csv\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.csv"
    assert content_disposition("\u00e9") == "attachment; filename=\"_\"; filename*=UTF-8''%C3%A9"
    assert content_disposition("~!#$&+-.^_`|") == "attachment; filename=\"~!#$&+-.^_`|\"; filename*=UTF-8''~!#$&+-.^_`|"
    assert content_disposition("\ud800") == "attachment; filename=\"_\"; filename*=UTF-8''%3F"
    assert content_disposition("   ") == "attachment; filename=\"download\"; filename*=UTF-8''%20%20%20"
