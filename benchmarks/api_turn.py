"""Latency of a conversation turn through the real handlers (offline model, no code), on moto.

Prints p50/p95 for start and append turns, and the DynamoDB requests each makes.

    .venv/bin/python benchmarks/api_turn.py [--turns 200]

moto answers in-process, so the figures measure our code (handlers, validation, domain,
serialisation) plus moto's, not DynamoDB's network round trips: add those per request
(about 3-8 ms each in-region) to estimate a deployed turn.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "layers")]
for key, value in {"POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_TRACE_DISABLED": "true",
                   "POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_SERVICE_NAME": "bench",
                   "POWERTOOLS_METRICS_NAMESPACE": "bench", "TABLE_NAME": "bench", "SANDBOX_MODE": "disabled",
                   "AUTH_MODE": "auto"}.items():
    os.environ.setdefault(key, value)

from local.apigw import invoke, make_event  # noqa: E402
from local.aws import create_table, fake_credentials  # noqa: E402


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"p50 {statistics.median(ordered):6.2f} ms   p95 {p95:6.2f} ms   (n={len(ordered)})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=200)
    args = parser.parse_args()
    fake_credentials()
    from moto import mock_aws

    with mock_aws():
        create_table("bench")
        from agentsapi.services import get_services

        services = get_services()
        in_dynamodb = [0.0]  # seconds spent inside DynamoDB calls (moto here, the network in AWS)
        call_started: list[float] = []
        events = services.store.client.meta.events
        events.register("before-call.dynamodb", lambda **_: call_started.append(time.perf_counter()))
        events.register("after-call.dynamodb",
                        lambda **_: in_dynamodb.__setitem__(0, in_dynamodb[0] + time.perf_counter() - call_started.pop()))
        headers = {"authorization": "Bearer bench", "content-type": "application/json"}

        def call(path: str, body: dict[str, object]) -> dict[str, object]:
            event = make_event("POST", path, headers, "", json.dumps(body))
            response = invoke("conversations", event)
            assert response["statusCode"] == 200, response["body"]
            return json.loads(response["body"])

        start_ms, start_requests, append_ms, append_requests = [], [], [], []
        start_own, append_own = [], []
        conversation_id = ""
        for turn in range(args.turns + 20):
            before, began, db_before = services.store.requests, time.perf_counter(), in_dynamodb[0]
            if turn % 10 == 0:
                conversation_id = call("/v1/conversations", {"model": "m", "inputs": "hello"})["conversation_id"]
                samples, requests, own = start_ms, start_requests, start_own
            else:
                call(f"/v1/conversations/{conversation_id}", {"inputs": f"turn {turn}"})
                samples, requests, own = append_ms, append_requests, append_own
            if turn >= 20:  # the first turns warm the interpreter's caches
                elapsed = time.perf_counter() - began
                samples.append(elapsed * 1000)
                own.append((elapsed - (in_dynamodb[0] - db_before)) * 1000)
                requests.append(services.store.requests - before)
    print(f"start turn  (offline model, no code), total with moto: {percentiles(start_ms)}")
    print(f"                    excluding DynamoDB (our code):    {percentiles(start_own)}"
          f"   DynamoDB requests/turn: {statistics.mean(start_requests):.1f}")
    print(f"append turn (offline model, no code), total with moto: {percentiles(append_ms)}")
    print(f"                    excluding DynamoDB (our code):    {percentiles(append_own)}"
          f"   DynamoDB requests/turn: {statistics.mean(append_requests):.1f}")


if __name__ == "__main__":
    main()
