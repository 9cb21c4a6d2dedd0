"""`make smoke`: a deployed stack (or `make serve`) checks itself, as a user with two keys would.

    make smoke STACK=agents-api KEY=agk_... KEY2=agk_...   # ApiUrl from the stack's outputs
    make smoke URL=http://127.0.0.1:8080                   # make serve (any two keys work there)

Prints one line per check and exits non-zero if any fails. Each check is what a user relies on:
keys are required; code runs and says how it was isolated; a cell reaches no network (DNS, a
public address, S3); a streamed turn's events arrive while it runs; a non-streamed turn longer
than API Gateway's 29 s succeeds through the official SDK unchanged; a 100 MB file goes in and
out; a batch of 10 finishes; and two keys see nothing of each other.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

CODE_TOOL = [{"type": "code_interpreter"}]


@dataclass
class Target:
    url: str
    key: str
    key2: str
    long_turn_s: float
    file_mb: int
    timeout_s: float = 600.0

    def client(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key or self.key}"},
                            timeout=self.timeout_s)

    def sdk(self, key: str | None = None) -> Any:
        from mistralai.client import Mistral

        return Mistral(api_key=key or self.key, server_url=self.url)  # as a user makes it: default timeouts


class CheckFailed(AssertionError):
    pass


def expect(condition: bool, detail: str) -> None:
    if not condition:
        raise CheckFailed(detail)


def code_turn(source: str, **extra: Any) -> dict[str, Any]:
    return {"model": "mistral-medium-latest", "tools": CODE_TOOL, "inputs": f"```python\n{source}\n```", **extra}


def execution_info(response: httpx.Response) -> dict[str, Any]:
    expect(response.status_code == 200, f"HTTP {response.status_code}: {response.text[:300]}")
    return next(o for o in response.json()["outputs"] if o["type"] == "tool.execution")["info"]


# -- the checks ---------------------------------------------------------------------------------

def no_key_is_refused(target: Target) -> str:
    answer = httpx.get(f"{target.url}/v1/agents", timeout=30)
    expect(answer.status_code == 401, f"without a key: HTTP {answer.status_code}")
    expect(answer.json().get("type") == "authentication_error", f"body: {answer.text[:200]}")
    return "401 authentication_error"


def code_runs_and_reports_its_isolation(target: Target) -> str:
    with target.client() as api:
        info = execution_info(api.post("/v1/conversations", json=code_turn("print(6 * 7)")))
    expect(info["code_output"] == "42\n", f"output {info['code_output']!r}")
    isolation = info.get("isolation") or {}
    expect(isolation.get("seccomp") is True, f"the seccomp filter is not installed: {isolation}")
    expect(bool(isolation.get("tenant_isolation")), f"no tenant isolation reported: {isolation}")
    return f"42; seccomp filter {isolation.get('seccomp_probe')}; {isolation['tenant_isolation']}"


NETWORK_CELL = """
import socket, urllib.request
tried = {}
for name, attempt in (
        ("dns", lambda: socket.getaddrinfo("example.com", 443)),
        ("tcp", lambda: socket.create_connection(("1.1.1.1", 443), timeout=3)),
        ("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("8.8.8.8", 53))),
        ("s3", lambda: urllib.request.urlopen("https://s3.amazonaws.com/", timeout=3))):
    try:
        attempt()
        tried[name] = "reached"
    except Exception as exc:
        reason = getattr(exc, "reason", None)
        tried[name] = type(exc).__name__ + ":" + str(getattr(exc, "errno", None) or getattr(reason, "errno", None))
print(tried)
"""


def cells_reach_no_network(target: Target) -> str:
    with target.client() as api:
        info = execution_info(api.post("/v1/conversations", json=code_turn(NETWORK_CELL)))
    tried = info["code_output"]
    expect("reached" not in tried, f"a cell reached the network: {tried}")
    expect(tried.count(":13") + tried.count(":1'") >= 4 or "PermissionError" in tried, f"not refused: {tried}")
    return tried.strip()


def a_streamed_turn_arrives_while_it_runs(target: Target) -> str:
    body = code_turn("import time\nprint('first', flush=True)\ntime.sleep(3)\nprint('then')", stream=True)
    arrivals: dict[str, float] = {}
    started = time.monotonic()
    with target.client() as api, api.stream("POST", "/v1/conversations", json=body) as response:
        expect(response.status_code == 200, f"HTTP {response.status_code}")
        for line in response.iter_lines():
            if line.startswith("event: "):
                arrivals.setdefault(line.removeprefix("event: "), time.monotonic() - started)
    first, done = arrivals.get("tool.execution.started"), arrivals.get("conversation.response.done")
    expect(first is not None and done is not None, f"events seen: {sorted(arrivals)}")
    expect(done - first >= 2.5, f"tool.execution.started at {first:.1f} s, done at {done:.1f} s: buffered")
    return f"tool.execution.started at {first:.1f} s, done at {done:.1f} s"


def a_long_non_streamed_turn_succeeds_through_the_sdk(target: Target) -> str:
    started = time.monotonic()
    response = target.sdk().beta.conversations.start(
        model="mistral-medium-latest", tools=CODE_TOOL,
        inputs=f"```python\nimport time\ntime.sleep({target.long_turn_s:g})\nprint('slept')\n```")
    took = time.monotonic() - started
    execution = next(o for o in response.outputs if o.type == "tool.execution")
    expect(execution.info["code_output"] == "slept\n", f"output {execution.info['code_output']!r}")
    return f"{took:.0f} s through the official SDK with its default timeouts"


def a_large_file_goes_in_and_out(target: Target) -> str:
    size = target.file_mb * 1024 * 1024
    data = os.urandom(1024 * 1024) * target.file_mb
    digest = hashlib.sha256(data).hexdigest()
    with target.client() as api:
        upload = api.post("/v1/files/uploads", json={"filename": "smoke.bin", "purpose": "batch", "size": size})
        expect(upload.status_code == 200, f"signed upload: HTTP {upload.status_code}: {upload.text[:200]}")
        signed = upload.json()
        sent = httpx.post(signed["url"], data=signed["fields"], files={"file": ("smoke.bin", data)}, timeout=600)
        expect(sent.status_code in (200, 201, 204), f"upload: HTTP {sent.status_code}: {sent.text[:200]}")
        record = api.get(f"/v1/files/{signed['id']}")
        expect(record.status_code == 200 and record.json()["bytes"] == size, f"file record: {record.text[:200]}")
        url = api.get(f"/v1/files/{signed['id']}/url", params={"expiry": 1}).json()["url"]
        back = httpx.get(url, timeout=600)
        expect(back.status_code == 200 and hashlib.sha256(back.content).hexdigest() == digest,
               f"download: HTTP {back.status_code}, {len(back.content)} bytes")
        api.delete(f"/v1/files/{signed['id']}")
    return f"{target.file_mb} MB up and down intact"


def a_batch_of_ten_finishes(target: Target) -> str:
    requests = [{"custom_id": f"r{n}", "body": {"inputs": f"```python\nprint({n} * 2)\n```",
                                               "tools": CODE_TOOL}} for n in range(10)]
    with target.client() as api:
        job = api.post("/v1/batch/jobs", json={"endpoint": "/v1/conversations", "model": "mistral-medium-latest",
                                               "requests": requests})
        expect(job.status_code == 200, f"HTTP {job.status_code}: {job.text[:200]}")
        job_id, status, deadline = job.json()["id"], job.json()["status"], time.monotonic() + target.timeout_s
        while status not in ("SUCCESS", "FAILED", "TIMEOUT_EXCEEDED", "CANCELLED") and time.monotonic() < deadline:
            time.sleep(1)
            current = api.get(f"/v1/batch/jobs/{job_id}").json()
            status = current["status"]
        expect(status == "SUCCESS" and current["succeeded_requests"] == 10, f"{status}: {current}")
        lines = [json.loads(line) for line in api.get(f"/v1/files/{current['output_file']}/content").text.splitlines()]
        expect(sorted(line["custom_id"] for line in lines) == sorted(r["custom_id"] for r in requests),
               f"{len(lines)} output lines")
    return "SUCCESS, 10 of 10, one output line each"


def two_keys_see_nothing_of_each_other(target: Target) -> str:
    with target.client() as first, target.client(target.key2) as second:
        agent = first.post("/v1/agents", json={"model": "mistral-medium-latest", "name": f"smoke-{uuid.uuid4().hex[:6]}"})
        conversation = first.post("/v1/conversations", json={"model": "mistral-medium-latest", "inputs": "hello"})
        expect(agent.status_code == 200 and conversation.status_code == 200, "the first key could not create")
        agent_id, conversation_id = agent.json()["id"], conversation.json()["conversation_id"]
        for path in (f"/v1/agents/{agent_id}", f"/v1/conversations/{conversation_id}",
                     f"/v1/conversations/{conversation_id}/history"):
            expect(second.get(path).status_code == 404, f"the second key read {path}")
        expect(agent_id not in second.get("/v1/agents").text, "the second key lists the first key's agent")
        expect(conversation_id not in second.get("/v1/conversations").text, "the second key lists the conversation")
        expect(second.delete(f"/v1/agents/{agent_id}").status_code == 404, "the second key deleted the agent")
        first.delete(f"/v1/agents/{agent_id}")
        first.delete(f"/v1/conversations/{conversation_id}")
    return "404 on every read and delete, absent from every listing"


CHECKS: list[tuple[str, Callable[[Target], str]]] = [
    ("no key -> 401", no_key_is_refused),
    ("a code turn, and its isolation", code_runs_and_reports_its_isolation),
    ("a cell reaches no network", cells_reach_no_network),
    ("a streamed turn arrives while it runs", a_streamed_turn_arrives_while_it_runs),
    ("a long non-streamed turn (SDK)", a_long_non_streamed_turn_succeeds_through_the_sdk),
    ("a large file in and out", a_large_file_goes_in_and_out),
    ("a batch of 10", a_batch_of_ten_finishes),
    ("two keys see nothing of each other", two_keys_see_nothing_of_each_other),
]


def stack_url(stack: str) -> str:
    import boto3

    outputs = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
    return next(o["OutputValue"] for o in outputs if o["OutputKey"] == "ApiUrl")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="the API's base URL (make serve: http://127.0.0.1:8080)")
    where.add_argument("--stack", help="a deployed stack's name: its ApiUrl output")
    parser.add_argument("--key", default=os.environ.get("SMOKE_KEY", "smoke-key-a"))
    parser.add_argument("--key2", default=os.environ.get("SMOKE_KEY2", "smoke-key-b"), help="another workspace's key")
    parser.add_argument("--long-turn-seconds", type=float, default=40.0, help="longer than API Gateway's 29 s")
    parser.add_argument("--file-mb", type=int, default=100)
    parser.add_argument("--only", default="", help="run the checks whose name contains this")
    args = parser.parse_args(argv)
    target = Target(args.url or stack_url(args.stack), args.key, args.key2, args.long_turn_seconds, args.file_mb)
    target.url = target.url.rstrip("/")
    print(f"smoke test of {target.url}")
    failed = 0
    for name, check in CHECKS:
        if args.only not in name:
            continue
        started = time.monotonic()
        try:
            detail, ok = check(target), True
        except Exception as exc:  # noqa: BLE001 - every check runs and reports
            detail, ok = f"{type(exc).__name__}: {exc}", False
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'}  {time.monotonic() - started:6.1f} s  {name:<38} {detail}", flush=True)
    print("all checks passed" if not failed else f"{failed} check(s) failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
