"""Handshakes with running cells: a test that claims a race waits until the cell is really running
(the cell writes a marker file in its working directory, which the host sees in the worker's work
area), never for a sleep it hopes is long enough."""

from __future__ import annotations

import glob
import os
import time
import uuid


def marker() -> str:
    return f"cell-started-{uuid.uuid4().hex}"


def announce(name: str) -> str:
    """The first line of a cell that says it runs: it creates ``name`` in its working directory."""
    return f"open({name!r}, 'w').close()\n"


def cells_started(name: str, server_pid: int | str | None = None) -> int:
    """How many cells have written ``name``, in the work areas of the pool of ``server_pid`` (this
    process's own pool by default; "*": any pool, the marker's name being unique)."""
    pid = os.getpid() if server_pid is None else server_pid
    return len(glob.glob(f"/tmp/agents-sbx-tmp-{pid}-*/sbx/run-*/{name}"))


def wait_for_cells(name: str, count: int = 1, server_pid: int | str | None = None, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while cells_started(name, server_pid) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} cell(s) writing {name} never ran (found {cells_started(name, server_pid)})")
        time.sleep(0.02)
