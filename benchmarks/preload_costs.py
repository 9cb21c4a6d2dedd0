"""What each library would cost the zygote if it were pre-imported, and what a cell pays if not.

For every library of the sandbox image, in a fresh sandbox interpreter that already holds the
zygote's preloads: the first-import time a cell pays when it is not preloaded, and the resident
memory it adds (which the zygote would carry, and every fork would copy page tables for).
Also the zygote's own preloads, each measured on top of the ones before it.

    .venv/bin/python benchmarks/preload_costs.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "sandbox_image")]
from sandbox_runner.protocol import SandboxConfig  # noqa: E402

PYTHON = os.environ.get("SANDBOX_PYTHON", "/opt/agents-sandbox/venv/bin/python")
CANDIDATES = ["IPython.lib.pretty", "openpyxl", "pyarrow.parquet", "seaborn", "sklearn.linear_model",
              "statsmodels.api", "PIL.Image", "tabulate", "networkx"]
PROBE = r"""
import importlib, json, resource, sys, time
def rss_mb():
    with open("/proc/self/status") as handle:
        return int(handle.read().split("VmRSS:")[1].split()[0]) / 1024
for name in sys.argv[1].split(","):
    if name:
        importlib.import_module(name)
before, started = rss_mb(), time.perf_counter()
importlib.import_module(sys.argv[2])
print(json.dumps({"ms": (time.perf_counter() - started) * 1000, "mb": rss_mb() - before}))
"""


def measure(preloaded: list[str], module: str) -> dict[str, float]:
    runs = []
    for _ in range(3):
        out = subprocess.run([PYTHON, "-c", PROBE, ",".join(preloaded), module], capture_output=True, text=True,
                             check=True, env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin", "HOME": "/tmp"})
        runs.append(json.loads(out.stdout))
    runs.sort(key=lambda r: r["ms"])
    return runs[1]  # the median of three


def main() -> None:
    preloads = list(SandboxConfig().preload)
    print("the zygote's preloads, each on top of the ones before it:")
    for index, module in enumerate(preloads):
        cost = measure(preloads[:index], module)
        print(f"  {module:24s} import {cost['ms']:7.1f} ms   resident +{cost['mb']:6.1f} MB")
    print("not preloaded: what a cell pays on first import (on top of the preloads), and what preloading would add:")
    for module in CANDIDATES:
        cost = measure(preloads, module)
        print(f"  {module:24s} import {cost['ms']:7.1f} ms   resident +{cost['mb']:6.1f} MB")


if __name__ == "__main__":
    main()
