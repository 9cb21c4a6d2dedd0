"""`make serve` stopped with SIGTERM leaves no sandbox mount, code copy or process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from local.launcher import ROOT, free_port
from tests.handshake import announce, marker, wait_for_cells

# These look for every sandbox mount and copy on the machine: alone (make test's second phase).
pytestmark = pytest.mark.serial


def sandbox_leftovers() -> set[str]:
    mounts = {line.split()[1] for line in Path("/proc/mounts").read_text().splitlines() if "agents-sbx-tmp-" in line}
    copies = {str(p) for p in Path("/tmp").glob("agents-sbx-*")}
    return mounts | copies


def test_sigterm_removes_worker_mounts_and_copies_even_with_a_turn_running(tmp_path: Path) -> None:
    before = sandbox_leftovers()
    port = free_port()
    env = {**os.environ, "PORT": str(port), "SANDBOX_WORKERS": "2", "DATA_DIR": str(tmp_path)}
    process = subprocess.Popen([sys.executable, "-m", "local.serve", "--port", str(port)], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if "listening on" in line:
            break
    url = f"http://127.0.0.1:{port}/v1/conversations"
    started = marker()
    body = {"model": "mistral-medium-latest", "tools": [{"type": "code_interpreter"}],
            "inputs": f"```python\n{announce(started)}import time\ntime.sleep(20)\n```"}
    answers: list[object] = []

    def turn() -> None:
        try:
            answers.append(httpx.post(url, json=body, headers={"Authorization": "Bearer k"}, timeout=30))
        except httpx.HTTPError as exc:
            answers.append(exc)

    caller = threading.Thread(target=turn)
    caller.start()
    wait_for_cells(started, 1, process.pid)  # the turn is running its cell: SIGTERM comes mid-turn
    assert answers == []
    ours = sandbox_leftovers() - before
    assert any("agents-sbx-tmp-" in item for item in ours), ours  # the workers' work areas were mounted
    stopping = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    assert time.monotonic() - stopping < 15  # far less than the cell's 20 s: it was not waited for
    caller.join(timeout=10)
    assert sandbox_leftovers() - before == set()


def test_what_a_killed_server_left_is_reclaimed_by_the_next(tmp_path: Path) -> None:
    """SIGKILL leaves no chance to clean up: the next pool unmounts and removes it."""
    from agentsapi.adapters.local_sandbox import WORK_AREA_PREFIX, reclaim_leftovers

    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    area = tmp_path / f"{WORK_AREA_PREFIX}{dead.pid}-x"
    area.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(area)], check=True)
    (area / "left").write_text("x")
    alive = tmp_path / f"{WORK_AREA_PREFIX}{os.getpid()}-y"
    alive.mkdir()
    assert reclaim_leftovers(str(tmp_path)) == [str(area)]
    assert not area.exists() and alive.exists()
    assert str(area) not in Path("/proc/mounts").read_text()
