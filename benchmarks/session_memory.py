"""What saving and restoring interpreter session state costs in memory, on top of the state.

Runs the runner's own session code (sandbox_image/sandbox_runner/session.py) with the sandbox's
interpreter, in a fresh process per measurement: a numpy array of N MiB is the state; peak RSS
(ru_maxrss) is read before and after `capture` writes it to a file, and before and after
`restore` loads it into a new namespace. The figure that matters is the peak above the state:
the execution's memory limit (1 GiB) must hold the user's data plus this.

    .venv/bin/python benchmarks/session_memory.py [--sizes 64,128,250] [--runner-dir sandbox_image]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, os, resource, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from sandbox_runner import session
mib, phase, path, work = int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
if phase == "capture":
    namespace = {"state": np.ones(mib * 131072)}
    before = peak_mib()
    notes = session.capture(namespace, work, 256 * 1024 * 1024, path)
    assert not notes, notes
    extra = peak_mib() - before
else:
    before = peak_mib()
    namespace = {}
    notes, _ = session.restore(open(path, "rb"), namespace, work)
    assert not notes and namespace["state"].nbytes == mib * 1048576, notes
    extra = peak_mib() - before - mib
print(json.dumps({"extra": extra}))
"""


def measure(python: str, runner_dir: str, mib: int, phase: str, path: str, work: str) -> float:
    """One phase in a fresh process started from here: Linux keeps a process's peak RSS across
    exec, so a process started by the one that held the state would start from its peak."""
    done = subprocess.run([python, "-c", PROBE, runner_dir, str(mib), phase, path, work], capture_output=True,
                          text=True, check=False, timeout=300)
    if done.returncode:
        raise SystemExit(done.stderr)
    return float(json.loads(done.stdout)["extra"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="64,128,250", help="state sizes in MiB")
    parser.add_argument("--runner-dir", default=str(ROOT / "sandbox_image"))
    args = parser.parse_args()
    python = os.environ.get("SANDBOX_PYTHON", "/opt/agents-sandbox/venv/bin/python")
    print("peak memory above the state itself (MiB), a numpy array as the state")
    print(f"{'state':>9} {'save':>8} {'restore':>8}")
    for mib in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="session-memory-") as scratch:
            path, work = os.path.join(scratch, "state"), os.path.join(scratch, "work")
            os.mkdir(work)
            save = measure(python, args.runner_dir, mib, "capture", path, work)
            restore = measure(python, args.runner_dir, mib, "restore", path, work)
        print(f"{mib:5d} MiB {save:8.1f} {restore:8.1f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
