"""N concurrent tenants running code through the official SDK against `make serve`.

Each tenant has its own key (so its own workspace) and runs one conversation: a start, then
appends, every turn a code cell (the offline model runs the fenced code it is given, then
answers). Prints the total code turns per second, p50/p95 turn latency and errors, then where
the server's time went (from its own per-request log lines when available).

    .venv/bin/python benchmarks/load.py [--tenants 16] [--seconds 20] [--url http://127.0.0.1:8080] [--raw-http]

Without --url it starts `make serve` itself (STORAGE=sqlite, a fresh DATA_DIR in /tmp).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "layers")]

CELL = "```python\nx = sum(i * i for i in range(1000))\nprint(x)\n```"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


class RawClient:
    """The same requests as the SDK, with plain httpx and no response models: what the server
    sustains when the client costs little CPU (the SDK's own parsing is heavy, and here it
    shares the server's two cores)."""

    def __init__(self, url: str, key: str) -> None:
        import httpx

        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)

    def turn(self, conversation_id: str | None) -> str:
        if conversation_id is None:
            body = {"model": "mistral-medium-latest", "tools": [{"type": "code_interpreter"}], "inputs": CELL}
            response = self.http.post("/v1/conversations", json=body)
        else:
            response = self.http.post(f"/v1/conversations/{conversation_id}", json={"inputs": CELL})
        if response.status_code != 200 or "332833500" not in response.text:
            raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
        return str(response.json()["conversation_id"])


class Tenant(threading.Thread):
    def __init__(self, url: str, number: int, until: float, start_line: threading.Barrier, raw: bool = False) -> None:
        super().__init__(name=f"tenant-{number}", daemon=True)
        from mistralai.client import Mistral

        self.client = Mistral(api_key=f"load-tenant-{number}", server_url=url, timeout_ms=60_000)
        self.raw = RawClient(url, f"load-tenant-{number}") if raw else None
        self.until = until
        self.start_line = start_line
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def turn(self, conversation_id: str | None) -> str:
        started = time.perf_counter()
        if self.raw is not None:
            conversation_id = self.raw.turn(conversation_id)
            self.latencies.append((time.perf_counter() - started) * 1000)
            return conversation_id
        if conversation_id is None:
            response = self.client.beta.conversations.start(
                model="mistral-medium-latest", tools=[{"type": "code_interpreter"}], inputs=CELL)
        else:
            response = self.client.beta.conversations.append(conversation_id=conversation_id, inputs=CELL)
        elapsed = (time.perf_counter() - started) * 1000
        executions = [o for o in response.outputs if getattr(o, "type", "") == "tool.execution"]
        if not executions or "332833500" not in str(executions[0].info):
            raise RuntimeError(f"the code did not run as expected: {response.outputs}")
        self.latencies.append(elapsed)
        return response.conversation_id

    def run(self) -> None:
        self.start_line.wait()
        conversation_id = None
        while time.monotonic() < self.until:
            try:
                conversation_id = self.turn(conversation_id)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                self.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                time.sleep(0.2)


def run_load(url: str, tenants: int, seconds: float, raw: bool = False) -> dict[str, float]:
    barrier = threading.Barrier(tenants + 1)
    until = time.monotonic() + seconds + 1.0
    workers = [Tenant(url, n, until, barrier, raw) for n in range(tenants)]
    for worker in workers:
        worker.start()
    barrier.wait()
    began = time.monotonic()
    for worker in workers:
        worker.join()
    wall = time.monotonic() - began
    latencies = [x for w in workers for x in w.latencies]
    errors = [e for w in workers for e in w.errors]
    for error in sorted(set(errors))[:5]:
        print(f"  error: {error}")
    return {"turns": len(latencies), "wall_s": wall, "rate": len(latencies) / wall,
            "p50": statistics.median(latencies) if latencies else float("nan"),
            "p95": percentile(latencies, 0.95), "errors": len(errors)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--url", help="a running server; default: start make serve here")
    parser.add_argument("--workers", help="SANDBOX_WORKERS for the server started here")
    parser.add_argument("--raw-http", action="store_true", help="plain httpx instead of the SDK (a lighter client)")
    args = parser.parse_args()
    server = data_dir = None
    url = args.url
    if url is None:
        from local.launcher import Server

        data_dir = tempfile.mkdtemp(prefix="agents-load-")
        env = {"DATA_DIR": data_dir, "POWERTOOLS_LOG_LEVEL": "WARNING"}
        if args.workers:
            env["SANDBOX_WORKERS"] = args.workers
        server = Server(env, log_path="/tmp/agents-load-server.log")
        url = server.url
        print(server.startup.strip().splitlines()[0] if server.startup.strip() else "")
    try:
        figures = run_load(url, args.tenants, args.seconds, raw=args.raw_http)
    finally:
        if server is not None:
            server.stop()
        if data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)
    client = "plain httpx" if args.raw_http else "the official SDK"
    print(f"{args.tenants} tenants through {client}, {figures['wall_s']:.1f} s: {figures['turns']} code turns")
    print(f"code turns/s:  {figures['rate']:6.1f}   (target >= 60)")
    print(f"turn latency:  p50 {figures['p50']:6.1f} ms   p95 {figures['p95']:6.1f} ms   (target p95 <= 500)")
    print(f"errors:        {figures['errors']}   (target 0)")


if __name__ == "__main__":
    main()
