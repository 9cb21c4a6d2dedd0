"""How soon a line a cell prints reaches a streaming client (live output), and how a burst travels.

Starts `make serve` (embedded storage on a fresh DATA_DIR, the bubblewrap sandbox, the offline
model), then streams turns whose cell prints a line every ``--interval`` seconds, each line
stamped with the time it was printed (one clock: the client and the cell share the machine), and
measures when each line's ``tool.execution.delta`` arrives. A second cell prints 30,000 lines as
fast as it can: how many events carry them (bursts are coalesced every 50 ms).

    .venv/bin/python benchmarks/live_output.py [--turns 5] [--lines 10] [--interval 0.2]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "layers")]

from local.launcher import Server  # noqa: E402
from local.sse import timed_events  # noqa: E402

FENCE = "```"


def stream(url: str, code: str) -> Iterator[tuple[float, dict[str, Any]]]:
    import httpx

    body = {"model": "m", "tools": [{"type": "code_interpreter"}], "stream": True,
            "inputs": f"{FENCE}python\n{code}\n{FENCE}"}
    with httpx.stream("POST", f"{url}/v1/conversations", json=body, timeout=120,
                      headers={"Authorization": "Bearer bench", "Accept": "text/event-stream"}) as response:
        yield from timed_events(response.iter_lines())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--lines", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.2)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="bench-live-")
    server = Server({"DATA_DIR": data_dir, "SANDBOX_WORKERS": "1", "SANDBOX_TIMEOUT_S": "60"},
                    log_path=f"{data_dir}.log")
    try:
        ticking = (f"import time\nfor n in range({args.lines}):\n    print(time.time(), flush=True)\n"
                   f"    time.sleep({args.interval})")
        lags: list[float] = []
        for _ in range(args.turns):
            for arrived, event in stream(server.url, ticking):
                if event.get("output"):
                    lags.extend(arrived - float(text) for text in event["output"]["text"].split())
        ordered = sorted(lags)
        print(f"print -> client, a line every {args.interval:g} s: p50 {statistics.median(ordered) * 1000:.1f} ms, "
              f"p95 {ordered[int(0.95 * (len(ordered) - 1))] * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms "
              f"(n={len(ordered)})")
        started = time.monotonic()
        events = lines = 0
        for _, event in stream(server.url, "for n in range(30000):\n    print(n)"):
            if event.get("output"):
                events += 1
                lines += event["output"]["text"].count("\n")
        print(f"30,000 lines printed at once: {lines} lines live in {events} events "
              f"(the output stops at its 100 kB cap); turn {time.monotonic() - started:.2f} s")
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
