"""Latency of a plain conversation turn (offline model, no code) through the local front end.

Starts `make serve` (embedded storage on a fresh DATA_DIR, the sandbox disabled: a plain turn
never runs code), then times start and append turns over HTTP with a keep-alive connection, as
an SDK client sees them, and the server's own time for each (from its request log).

    .venv/bin/python benchmarks/api_turn.py [--turns 300] [--rate-limit 1000000]

--rate-limit sets RATE_LIMIT_PER_MINUTE (default off), to see the limiter's cost.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "layers")]

from local.launcher import Server  # noqa: E402


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"p50 {statistics.median(ordered):6.2f} ms   p95 {p95:6.2f} ms   (n={len(ordered)})"


def main() -> None:
    import httpx

    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--rate-limit", type=int, default=0)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="agents-api-turn-")
    log = Path(data_dir) / "server.log"
    server = Server({"DATA_DIR": data_dir, "SANDBOX_MODE": "disabled",
                     "RATE_LIMIT_PER_MINUTE": str(args.rate_limit)}, log_path=log)
    start_ms: list[float] = []
    append_ms: list[float] = []
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": "Bearer bench"}, timeout=30) as client:
            conversation_id = ""
            for turn in range(args.turns + 20):
                began = time.perf_counter()
                if turn % 10 == 0:
                    response = client.post("/v1/conversations", json={"model": "m", "inputs": "hello"})
                    conversation_id = response.json()["conversation_id"]
                    samples = start_ms
                else:
                    response = client.post(f"/v1/conversations/{conversation_id}", json={"inputs": f"turn {turn}"})
                    samples = append_ms
                assert response.status_code == 200, response.text
                if turn >= 20:  # the first turns warm the interpreter's caches
                    samples.append((time.perf_counter() - began) * 1000)
    finally:
        server.stop()
    server_ms = [float(m) for m in re.findall(r"^POST /v1/conversations\S* 200 (\d+)ms$", log.read_text(), re.M)][20:]
    shutil.rmtree(data_dir, ignore_errors=True)
    print(f"start turn  (offline model, no code), client-observed: {percentiles(start_ms)}")
    print(f"append turn (offline model, no code), client-observed: {percentiles(append_ms)}")
    print(f"all turns, the server's own time (whole ms):           {percentiles(server_ms)}")
    print("target: plain turn p50 <= 10 ms through the local front end")


if __name__ == "__main__":
    main()
