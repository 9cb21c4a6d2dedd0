"""Bounds on what a client may send: JSON nesting, and the names files are given.

Pure functions, used at the HTTP edge (every JSON body), by the file service (uploads), by the
batch service (JSONL lines) and by the runtime (names of files the code wrote).
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_NAME_BYTES = 255  # NAME_MAX of Linux file systems, in bytes of UTF-8
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def has_lone_surrogate(raw: str | bytes, data: Any) -> bool:
    """Whether JSON text ``raw``, parsed as ``data``, holds an unpaired UTF-16 surrogate escape
    (json.loads pairs valid ones; one left alone can be neither stored nor encoded)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if not _SURROGATE_ESCAPE.search(text):
        return False
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def too_deep(value: Any, limit: int) -> list[str | int] | None:
    """The path to the first container nested deeper than ``limit`` levels (``{}`` and ``[]`` each
    count one), or None. Iterative, so a hostile document cannot exhaust the stack here."""
    stack: list[tuple[Any, int, list[str | int]]] = [(value, 1, [])]
    while stack:
        node, depth, path = stack.pop()
        if depth > limit:
            return path
        if isinstance(node, dict):
            stack.extend((child, depth + 1, [*path, str(key)]) for key, child in node.items()
                         if isinstance(child, (dict, list)))
        elif isinstance(node, list):
            stack.extend((child, depth + 1, [*path, index]) for index, child in enumerate(node)
                         if isinstance(child, (dict, list)))
    return None


def file_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a file (None when it can): empty, not UTF-8, over 255 bytes of
    UTF-8, a path, or a control character (CR and LF would split an HTTP header; NUL a C string)."""
    if not name or name in (".", ".."):
        return "is empty"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if size > MAX_NAME_BYTES:
        return f"is {size} bytes of UTF-8; at most {MAX_NAME_BYTES} are allowed"
    if "/" in name:
        return "contains a path separator (/)"
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in name):
        return "contains a control character (CR, LF, NUL, ...)"
    return None


def usable_file_name(name: str, fallback: str) -> tuple[str, str | None]:
    """``name`` if it can name a stored file, else ``fallback`` (keeping a plain extension), with why."""
    problem = file_name_problem(name)
    if problem is None:
        return name, None
    stem, dot, extension = name.rpartition(".")
    keep = dot and stem and extension.isascii() and extension.isalnum() and len(extension) <= 10
    return (f"{fallback}.{extension}" if keep else fallback), problem
