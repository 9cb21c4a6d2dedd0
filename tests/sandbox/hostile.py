"""Helpers for the hostile-code tests: run a cell and check nothing leaked, check a clean slate."""

from __future__ import annotations

import json
import time
from typing import Any

from agentsapi.sandbox.port import ExecutionRequest, ExecutionResult

SECRETS = ("canary-7f3a9d1e", "awscanary-52c81b")  # planted in the worker's environment (conftest)
DEADLINE_MARGIN_S = 3.0
# What starting a new zygote may add (it imports numpy, pandas, matplotlib): up to 8 s on a loaded 2-core machine.
ZYGOTE_START_S = 15.0

CANARY = r"""
import json, os
me = os.getpid()
def parent(pid):
    with open(f"/proc/{pid}/stat") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[1])
ancestors, pid = set(), me
while pid > 1:
    pid = parent(pid)
    ancestors.add(pid)
others = []
for name in os.listdir("/proc"):
    if name.isdigit() and int(name) != me and int(name) not in ancestors:
        states = []
        for task in os.listdir(f"/proc/{name}/task") if os.path.isdir(f"/proc/{name}/task") else []:
            try:
                fields = open(f"/proc/{name}/task/{task}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # A task in do_exit (PF_EXITING, 0x4) never runs user code again, even while the
            # kernel still tears its memory down (the next execution need not wait for that).
            states.append("X" if int(fields[6]) & 0x4 else fields[0])
        if any(state not in "ZX" for state in states):  # a zombie main thread can hide live threads
            others.append(int(name))
listing = {d: sorted(os.listdir(d)) for d in ("/tmp", "/tmp/sbx", "/tmp/xchg", ".") if os.path.isdir(d)}
print(json.dumps({"others": others, "listing": listing, "env": sorted(os.environ)}))
"""


def run(sandbox: Any, code: str, timeout_s: float = 2.0, files: list[Any] | None = None,
        margin_s: float = DEADLINE_MARGIN_S) -> tuple[ExecutionResult, float]:
    started = time.monotonic()
    result = sandbox.execute(ExecutionRequest(code=code, timeout_s=timeout_s, files=files or []))
    elapsed = time.monotonic() - started
    assert elapsed < timeout_s + margin_s, f"runner took {elapsed:.1f}s for a {timeout_s}s deadline"
    everything = json.dumps(result.model_dump())
    for secret in SECRETS:
        assert secret not in everything, "a secret from the runner's environment leaked"
    return result, elapsed


def assert_clean_slate(sandbox: Any) -> None:
    result, _ = run(sandbox, CANARY, timeout_s=5)
    assert result.status == "ok", result.code_output()
    state = json.loads(result.outputs[0].text)
    assert state["others"] == [], f"processes survived: {state['others']}"
    # The work root, and the (empty) directory where inputs and outputs are exchanged by reference.
    assert state["listing"]["/tmp"] == ["sbx", "xchg"], state["listing"]
    assert state["listing"]["/tmp/xchg"] == [], state["listing"]
    # Only this execution's own directory, and the runner's control directory beside it.
    [workdir, control] = state["listing"]["/tmp/sbx"]
    assert control == workdir + ".ctl", state["listing"]
    assert state["listing"]["."] == []
    assert set(state["env"]) <= {"PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "PYTHONDONTWRITEBYTECODE",
                                 "PYTHONIOENCODING", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                 "MPLBACKEND", "MPLCONFIGDIR", "JOBLIB_MULTIPROCESSING"}


def normal_time(sandbox: Any) -> float:
    """How long a trivial cell takes on this sandbox now (the best of three): thresholds are
    multiples of it, so that a loaded machine slows the bound as it slows the cell."""
    return min(run(sandbox, "print(1)")[1] for _ in range(3))


def assert_prompt(elapsed: float, normal: float, what: str) -> None:
    """The runner answered about as fast as for a trivial cell: it did not wait on what the cell left."""
    assert elapsed < 5 * normal + 0.5, f"{what}: {elapsed:.2f} s, a trivial cell takes {normal:.2f} s"
