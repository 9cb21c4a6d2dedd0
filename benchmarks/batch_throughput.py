"""Batch throughput on one machine: N conversation requests (offline model, one small code cell
each) through the real batch API handler, the embedded queue and store (SQLite under a fresh
DATA_DIR, as `make serve` runs), the real worker handler and the local bubblewrap sandbox.

Prints the end-to-end rate, and the rate over the first 100 and the last 100 requests to
settle: the job must not slow down as it grows.

    .venv/bin/python benchmarks/batch_throughput.py [--requests 1000] [--pollers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "layers")]
DATA_DIR = tempfile.mkdtemp(prefix="agents-batch-bench-")
for key, value in {"POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_TRACE_DISABLED": "true",
                   "POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_SERVICE_NAME": "bench",
                   "POWERTOOLS_METRICS_NAMESPACE": "bench", "STORAGE": "sqlite", "DATA_DIR": DATA_DIR,
                   "SANDBOX_MODE": "local", "SANDBOX_RUNNER_DIR": str(ROOT / "sandbox_image"),
                   "SANDBOX_WORKERS": "2", "AUTH_MODE": "auto"}.items():
    os.environ.setdefault(key, value)

from local.apigw import invoke, make_event  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--pollers", type=int, default=2)
    args = parser.parse_args()
    from agentsapi.services import get_services
    from local.batch_poller import QueuePoller

    services = get_services()
    services.sandbox.warm_up()
    body = {"endpoint": "/v1/conversations", "model": "m",
            "requests": [{"custom_id": f"r{n}", "body": {"inputs": f"```python\nprint({n} * 2)\n```",
                                                         "tools": [{"type": "code_interpreter"}]}}
                         for n in range(args.requests)]}
    started = time.perf_counter()
    event = make_event("POST", "/v1/batch/jobs", {"authorization": "Bearer bench", "content-type": "application/json"},
                       "", json.dumps(body))
    job = json.loads(invoke("batch", event)["body"])
    queued = time.perf_counter()
    workspace = services.keys.authenticate("Bearer bench").workspace
    settled_at: dict[int, float] = {}  # completed count -> when it was first seen

    def status() -> dict[str, object]:
        current = services.batch.get(workspace, job["id"])
        settled_at.setdefault(int(current["completed_requests"]), time.perf_counter())
        return current

    def work(poller: QueuePoller) -> None:
        # Like Lambda's pollers: keep receiving until the job is done (a queue that looks empty
        # may only have messages in flight with another poller).
        give_up = time.monotonic() + 1800
        while status()["status"] not in ("SUCCESS", "FAILED"):
            if time.monotonic() > give_up:
                raise SystemExit(f"stuck: {status()}")
            poller.poll_once(wait_s=0)

    consumers = services.storage.consumers
    threads = [threading.Thread(target=work, args=(QueuePoller(*consumers),)) for _ in range(args.pollers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    finished = time.perf_counter()
    done = status()
    services.sandbox.close()
    shutil.rmtree(DATA_DIR, ignore_errors=True)
    assert done["status"] == "SUCCESS" and done["succeeded_requests"] == args.requests, done

    def rate_between(low: int, high: int) -> float:
        start = max((t for n, t in settled_at.items() if n <= low), default=queued)
        end = min(t for n, t in settled_at.items() if n >= high)
        return (high - low) / (end - start)

    print(f"{args.requests} requests: queued in {queued - started:.2f} s, ran in {finished - queued:.1f} s with "
          f"{args.pollers} poller(s) -> {args.requests / (finished - started):.1f} requests/s end to end")
    if args.requests >= 200:
        print(f"  rate over the first 100 requests: {rate_between(0, 100):.1f}/s; over the last 100: "
              f"{rate_between(args.requests - 100, args.requests):.1f}/s")


if __name__ == "__main__":
    main()
