"""Added latency of carrying interpreter session state, through the local invoker.

For a small namespace (a few variables) and a large one (about 2 MB of arrays and a frame),
prints p50/p95 of the same `print(1)` cell run without a session, and with the state restored
before and captured after it — what every execution in a conversation pays.

    .venv/bin/python benchmarks/session_latency.py [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers"))

from agentsapi.adapters.local_sandbox import LocalSandbox, LocalSandboxConfig  # noqa: E402
from agentsapi.sandbox.port import ExecutionRequest  # noqa: E402

SMALL = "a = 1\nb = 'text'\nc = [1, 2, 3]\ndef f(x):\n    return x + 1"
LARGE = ("import numpy as np\nimport pandas as pd\narrays = [np.random.rand(50_000) for _ in range(4)]\n"
         "frame = pd.DataFrame({'x': np.arange(20_000), 'y': np.random.rand(20_000)})")


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"p50 {statistics.median(ordered):7.1f} ms   p95 {p95:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--gap", type=float, default=0.3)
    args = parser.parse_args()
    python = os.environ.get("SANDBOX_PYTHON", "/opt/agents-sandbox/venv/bin/python")
    pool = LocalSandbox(LocalSandboxConfig(python=python, runner_dir=str(ROOT / "sandbox_image"), workers=1))
    pool.warm_up()

    def timed(request: ExecutionRequest) -> list[float]:
        samples = []
        for _ in range(args.runs):
            time.sleep(args.gap)
            started = time.perf_counter()
            result = pool.execute(request)
            samples.append((time.perf_counter() - started) * 1000)
            assert result.status == "ok", result.code_output()
        return samples

    baseline = timed(ExecutionRequest(code="print(1)"))
    print(f"no session:                    {percentiles(baseline)}")
    for label, setup in (("small namespace", SMALL), ("large namespace", LARGE)):
        state = pool.execute(ExecutionRequest(code=setup, carry_session=True)).session
        assert state is not None
        samples = timed(ExecutionRequest(code="print(1)", carry_session=True, session_state=state.content()))
        added = statistics.median(samples) - statistics.median(baseline)
        print(f"{label} ({state.bytes / 1024:7.1f} KiB): {percentiles(samples)}   added p50 {added:6.1f} ms")
    pool.close()


if __name__ == "__main__":
    main()
