"""What carrying interpreter session state costs, per MB of state, up to 256 MiB.

Through the local invoker, as `make serve` runs it: the state lives in a file-system blob store
(as under DATA_DIR) and travels by reference (the worker's exchange directory). For states of
growing size (a numpy array of that many MB), runs the same `print(1)` cell with the state
restored before and captured after it — what every execution in a conversation pays — and
prints the median time, the time added over no session, and that per MB.

    .venv/bin/python benchmarks/session_latency.py [--runs 5] [--sizes 1,16,64,128,250]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers"))

from agentsapi.adapters.file_blobs import FileBlobs  # noqa: E402
from agentsapi.adapters.local_sandbox import LocalSandbox, LocalSandboxConfig  # noqa: E402
from agentsapi.sandbox.port import ExecutionRequest  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    # In MiB; the limit (SESSION_MAX_BYTES, 256 MiB) counts the pickling overhead too.
    parser.add_argument("--sizes", default="1,16,64,128,250", help="state sizes in MiB")
    args = parser.parse_args()
    python = os.environ.get("SANDBOX_PYTHON", "/opt/agents-sandbox/venv/bin/python")
    pool = LocalSandbox(LocalSandboxConfig(python=python, runner_dir=str(ROOT / "sandbox_image"), workers=1,
                                           timeout_s=120))
    pool.warm_up()
    with tempfile.TemporaryDirectory(prefix="session-bench-") as data_dir:
        blobs = FileBlobs(Path(data_dir) / "blobs", os.urandom(32), "http://127.0.0.1")

        def run(request: ExecutionRequest) -> tuple[float, object]:
            started = time.perf_counter()
            result = pool.execute(request)
            elapsed = (time.perf_counter() - started) * 1000
            assert result.status == "ok", result.code_output()
            return elapsed, result

        baseline = statistics.median(run(ExecutionRequest(code="print(1)", blobs=blobs))[0] for _ in range(args.runs))
        print(f"no session: print(1) p50 {baseline:7.1f} ms")
        print(f"{'state':>10} {'p50':>10} {'added':>10} {'per MB':>10}")
        for mib in (int(s) for s in args.sizes.split(",")):
            _, first = run(ExecutionRequest(code=f"import numpy as np\nstate = np.ones({mib} * 131072)",
                                            carry_session=True, blobs=blobs, timeout_s=120))
            key = adopt(blobs, first, "bench/state-0")
            samples = []
            for number in range(args.runs):
                elapsed, result = run(ExecutionRequest(code="print(1)", carry_session=True, session_key=key,
                                                       blobs=blobs, timeout_s=120))
                samples.append(elapsed)
                key = adopt(blobs, result, f"bench/state-{number + 1}")
            size_mb = blobs.size(key) / 1e6  # type: ignore[operator]
            assert size_mb > mib * 1.0, f"the {mib} MiB state was not carried: {result.code_output()}"  # type: ignore[attr-defined]
            p50 = statistics.median(samples)
            added = p50 - baseline
            print(f"{size_mb:7.1f} MB {p50:8.1f} ms {added:8.1f} ms {added / size_mb:7.2f} ms")
            blobs.delete_prefix("bench/")
    pool.close()


def adopt(blobs: FileBlobs, result: object, key: str) -> str:
    """What the conversation service does with a new state: keep it under its own key."""
    session = result.session  # type: ignore[attr-defined]
    assert session is not None and session.key, result.code_output()  # type: ignore[attr-defined]
    blobs.move(session.key, key)
    blobs.delete_prefix(result.exchange_prefix)  # type: ignore[attr-defined]
    return key


if __name__ == "__main__":
    main()
