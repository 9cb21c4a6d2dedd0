"""Batch throughput: N conversation requests (offline model, one small code cell each) through
the real batch API handler, SQS (moto), the real worker handler and the local bubblewrap
sandbox, on this machine. Prints requests per second.

    .venv/bin/python benchmarks/batch_throughput.py [--requests 1000]

The worker runs in-process with one poller: moto's in-process DynamoDB does not keep
transactions atomic across threads, so concurrent workers against it would measure moto's
races, not ours. The figure includes moto's emulation of DynamoDB/SQS/S3, which dominates;
the sandbox runs for real (bubblewrap workers).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "layers")]
for key, value in {"POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_TRACE_DISABLED": "true",
                   "POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_SERVICE_NAME": "bench",
                   "POWERTOOLS_METRICS_NAMESPACE": "bench", "TABLE_NAME": "bench", "BUCKET_NAME": "bench",
                   "SANDBOX_MODE": "local", "SANDBOX_RUNNER_DIR": str(ROOT / "sandbox_image"),
                   "SANDBOX_WORKERS": "2", "AUTH_MODE": "auto"}.items():
    os.environ.setdefault(key, value)

from local.apigw import invoke, make_event  # noqa: E402
from local.aws import create_bucket, create_queues, create_table, fake_credentials  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--pollers", type=int, default=1)
    args = parser.parse_args()
    fake_credentials()
    from moto import mock_aws

    with mock_aws():
        create_table("bench")
        create_bucket("bench")
        url, dlq = create_queues("bench-batch")
        os.environ["BATCH_QUEUE_URL"] = url
        from agentsapi.services import get_services
        from local.batch_poller import QueuePoller

        services = get_services()
        services.sandbox.warm_up()
        # Time spent inside AWS calls (moto here; the network in AWS), to report our own rate too.
        in_aws = [0.0]
        local = threading.local()
        import boto3

        def before(**_: object) -> None:
            local.started = time.perf_counter()

        def after(**_: object) -> None:
            in_aws[0] += time.perf_counter() - getattr(local, "started", time.perf_counter())

        for client in (services.store.client, services.batch.queue.client, services.files.blobs.client):
            client.meta.events.register("before-call", before)
            client.meta.events.register("after-call", after)
        del boto3
        body = {"endpoint": "/v1/conversations", "model": "m",
                "requests": [{"custom_id": f"r{n}", "body": {"inputs": f"```python\nprint({n} * 2)\n```",
                                                             "tools": [{"type": "code_interpreter"}]}}
                             for n in range(args.requests)]}
        started = time.perf_counter()
        event = make_event("POST", "/v1/batch/jobs", {"authorization": "Bearer bench",
                                                      "content-type": "application/json"}, "", json.dumps(body))
        job = json.loads(invoke("batch", event)["body"])
        queued = time.perf_counter()
        workspace = services.keys.authenticate("Bearer bench")

        def work(poller: QueuePoller) -> None:
            # Like Lambda's pollers: keep receiving until the job is done (a queue that looks
            # empty may only have messages in flight with the other poller).
            give_up = time.monotonic() + 900
            while services.batch.get(workspace, job["id"])["status"] not in ("SUCCESS", "FAILED"):
                if time.monotonic() > give_up:
                    raise SystemExit(f"stuck: {services.batch.get(workspace, job['id'])}")
                poller.poll_once(wait_s=0)

        pollers = [QueuePoller(url, dlq) for _ in range(args.pollers)]
        threads = [threading.Thread(target=work, args=(p,)) for p in pollers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        finished = time.perf_counter()
        done = services.batch.get(workspace, job["id"])
        services.sandbox.close()
    assert done["status"] == "SUCCESS" and done["succeeded_requests"] == args.requests, done
    total = finished - started
    print(f"{args.requests} requests: queued in {queued - started:.1f} s, ran in {finished - queued:.1f} s "
          f"with {args.pollers} poller(s) -> {args.requests / total:.1f} requests/s end to end")
    own = total - in_aws[0]
    print(f"  of which inside DynamoDB/S3/SQS calls (moto): {in_aws[0]:.1f} s; the rest (handlers, runtime, sandbox): "
          f"{own:.1f} s -> {args.requests / own:.1f} requests/s excluding AWS calls")


if __name__ == "__main__":
    main()
