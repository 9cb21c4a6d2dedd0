"""Sandbox latency and footprint, through the local invoker (bubblewrap worker, same runner as Lambda).

Prints p50/p95 for a warm `print(1)`, for a cell using pandas and matplotlib, and for a plain
`python -c 'print(1)'` subprocess of the sandbox's own interpreter (its real executable, not a
version-manager shim), measured in the same run; plus worker start-up time and idle memory.

    .venv/bin/python benchmarks/sandbox_latency.py [--runs 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers"))

from agentsapi.adapters.local_sandbox import LocalSandbox, LocalSandboxConfig  # noqa: E402
from agentsapi.sandbox.port import ExecutionRequest  # noqa: E402

PANDAS_CELL = """import pandas as pd
import matplotlib.pyplot as plt
df = pd.DataFrame({"x": range(100), "y": [i * i for i in range(100)]})
df.plot(x="x", y="y")
df.describe()"""


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"p50 {statistics.median(ordered):7.1f} ms   p95 {p95:7.1f} ms   (n={len(ordered)})"


def timed(action: object, runs: int, gap_s: float = 0.0) -> list[float]:
    samples = []
    for _ in range(runs):
        time.sleep(gap_s)
        started = time.perf_counter()
        action()  # type: ignore[operator]
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def tree_pss_kb(pid: int) -> int:
    """Proportional memory (PSS) of a process and all its descendants: shared pages (the
    zygote's libraries, shared copy-on-write with its spare child) are counted once."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            status = Path(f"/proc/{name}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        children.setdefault(int(fields["PPid"].strip()), []).append(int(name))
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            rollup = Path(f"/proc/{current}/smaps_rollup").read_text()
            total += int(next(line.split()[1] for line in rollup.splitlines() if line.startswith("Pss:")))
        except (OSError, StopIteration):
            pass
        stack.extend(children.get(current, []))
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--cold-spare", action="store_true", help="do not warm the spare child (SANDBOX_WARM_SPARE=0)")
    parser.add_argument("--gap", type=float, default=0.3,
                        help="idle seconds between executions (a model call separates them in a conversation)")
    args = parser.parse_args()
    python = os.environ.get("SANDBOX_PYTHON", "/opt/agents-sandbox/venv/bin/python")
    real_python = os.path.realpath(python)
    extra = {"SANDBOX_WARM_SPARE": "0"} if args.cold_spare else {}
    pool = LocalSandbox(LocalSandboxConfig(python=python, runner_dir=str(ROOT / "sandbox_image"), workers=1,
                                           extra_env=extra))
    started = time.perf_counter()
    hello = pool.warm_up()
    startup_ms = (time.perf_counter() - started) * 1000
    worker = pool._idle[0]  # the one worker, for its memory

    def run(code: str) -> None:
        result = pool.execute(ExecutionRequest(code=code))
        assert result.status == "ok", result.code_output()

    for _ in range(5):  # warm the caches the way a warm container would have
        run("print(1)")
        run(PANDAS_CELL)
    time.sleep(1.0)  # steady state: zygote plus its (warmed) spare child, waiting
    idle_mb = tree_pss_kb(worker.process.pid) / 1024
    # Executions in a conversation are separated by model calls; a short gap lets the zygote
    # fork its spare child in between, as it does in real use. Back-to-back is reported too.
    warm = timed(lambda: run("print(1)"), args.runs, gap_s=args.gap)
    back_to_back = timed(lambda: run("print(1)"), args.runs)
    pandas = timed(lambda: run(PANDAS_CELL), max(10, args.runs // 3), gap_s=args.gap)
    plain = timed(lambda: subprocess.run([real_python, "-c", "print(1)"], check=True, capture_output=True), args.runs,
                  gap_s=args.gap)  # the same conditions as the warm runs
    pool.close()

    print(f"sandbox worker start-up (bwrap + interpreter + preloads): {startup_ms:7.1f} ms"
          f"   (runner's own report: {hello.get('startup_ms')} ms)")
    print(f"sandbox worker idle memory (process tree, PSS):           {idle_mb:7.1f} MB")
    print(f"warm print(1) through the invoker:        {percentiles(warm)}")
    print(f"warm print(1), back to back (no gap):     {percentiles(back_to_back)}")
    print(f"pandas + matplotlib cell:                 {percentiles(pandas)}")
    print(f"plain `{real_python} -c 'print(1)'`: {percentiles(plain)}")
    ratio = statistics.median(warm) / statistics.median(plain)
    print(f"warm print(1) / plain subprocess (p50):   {ratio:.2f}  (target <= 0.50)")
    print(f"pandas cell p50 target < 100 ms:          {'met' if statistics.median(pandas) < 100 else 'NOT met'}")


if __name__ == "__main__":
    main()
