"""The sandbox as Lambda runs it: awslambdaric polling a Runtime API on loopback, S3 (moto in
server mode) on loopback, one unprivileged uid, read-only root but /tmp, the host's network.

The API side is the real LambdaSandbox adapter: it signs S3 URLs for exactly one execution, the
runner moves inputs and outputs through them, and user code, whose seccomp filter refuses every
socket but AF_UNIX, reaches neither the Runtime API (the next invocation, another tenant's code)
nor S3 (even holding a valid signed URL), nor the runner's credentials.
"""

from __future__ import annotations

import hashlib
import json

from agentsapi.sandbox.port import SandboxFile
from tests.lambda_mode.harness import BUCKET, CREDENTIALS, Harness


def test_inputs_outputs_and_the_session_move_through_signed_urls(lambda_harness: Harness) -> None:
    # 8 MB: more than a Lambda payload can carry, so it can only have travelled by reference.
    data = b"n\n" + b"".join(b"%d\n" % i for i in range(1_100_000))
    lambda_harness.blobs.put("files/ws-a/f-1", data)
    code = ("import hashlib, pandas as pd\nframe = pd.read_csv('data.csv')\n"
            "print(len(frame), hashlib.sha256(open('data.csv', 'rb').read()).hexdigest())\n"
            "frame.assign(n=frame.n * 2).to_csv('doubled.csv', index=False)")
    first = lambda_harness.run(code, files=[SandboxFile(name="data.csv", key="files/ws-a/f-1", size=len(data))],
                        carry_session=True)
    assert first.status == "ok", first.code_output() + lambda_harness.function.output()
    assert first.code_output() == f"1100000 {hashlib.sha256(data).hexdigest()}\n"
    [produced] = first.files
    assert produced.name == "doubled.csv" and produced.key and produced.key.startswith("sandbox/")
    doubled = lambda_harness.blobs.get(produced.key) or b""
    assert doubled.startswith(b"n\n0\n2\n4\n") and produced.size == len(doubled)
    assert first.session is not None and first.session.key and lambda_harness.blobs.size(first.session.key)
    assert not [k for k in lambda_harness.keys("sandbox/") if "/in/" in k]  # the inputs' copies are gone
    # The next execution resumes the state from its key: the frame is there, the file is not re-read.
    second = lambda_harness.run("print(int(frame.n.sum()))", carry_session=True, session_key=first.session.key)
    assert second.code_output() == f"{sum(range(1_100_000))}\n", second.code_output()
    first_tenant, second_tenant = lambda_harness.client.tenants[-2:]  # both invokes name the workspace
    assert first_tenant == second_tenant != "None"


def test_user_code_cannot_reach_the_runtime_api(lambda_harness: Harness) -> None:
    before = len(lambda_harness.api.requests)
    host, port = lambda_harness.api.address.split(":")
    code = f"""
import os, socket, urllib.request
attempts = {{}}
try:
    socket.create_connection(({host!r}, {port}), timeout=2)
    attempts["tcp"] = "connected"
except OSError as exc:
    attempts["tcp"] = type(exc).__name__ + ":" + str(exc.errno)
try:
    urllib.request.urlopen("http://{host}:{port}/2018-06-01/runtime/invocation/next", timeout=2)
    attempts["http"] = "answered"
except Exception as exc:
    attempts["http"] = type(exc).__name__
inherited = []
for fd in os.listdir("/proc/self/fd"):
    try:
        target = os.readlink(f"/proc/self/fd/{{fd}}")
    except OSError:
        continue
    if target.startswith("socket:"):
        try:
            socket.socket(fileno=int(fd)).getpeername()
            inherited.append(fd)
        except OSError:
            pass
attempts["inherited_sockets"] = inherited
runner_fds = []
for pid in os.listdir("/proc"):
    if pid.isdigit() and int(pid) != os.getpid():
        try:
            runner_fds += [(pid, fd) for fd in os.listdir(f"/proc/{{pid}}/fd")]
        except OSError:
            pass
attempts["other_processes_fds"] = runner_fds
print(attempts)
"""
    result = lambda_harness.run(code)
    assert result.status == "ok", result.code_output()
    attempts = eval(result.code_output())  # noqa: S307 - our own dict literal, printed by the cell
    assert attempts["tcp"] == "PermissionError:13" and attempts["http"] == "URLError", attempts
    assert attempts["inherited_sockets"] == [] and attempts["other_processes_fds"] == [], attempts
    # Only the runtime itself talked to the API: this invocation's next and response, and the next poll.
    calls = lambda_harness.api.requests[before:]
    assert all(line.startswith(("GET /2018-06-01/runtime/invocation/next", "POST /2018-06-01/runtime/invocation/"))
               for line in calls), calls
    assert sum(line.startswith("POST") for line in calls) == 1, calls


def test_user_code_cannot_reach_s3_even_with_a_signed_url(lambda_harness: Harness) -> None:
    lambda_harness.blobs.put("files/ws-b/secret", b"another tenant's data")
    get_url = lambda_harness.s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "files/ws-b/secret"})
    put_url = lambda_harness.s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "sandbox/planted"})
    code = f"""
import urllib.request
for method, url in (("GET", {get_url!r}), ("PUT", {put_url!r})):
    try:
        request = urllib.request.Request(url, data=b"planted" if method == "PUT" else None, method=method)
        print(method, urllib.request.urlopen(request, timeout=3).read()[:40])
    except Exception as exc:
        print(method, type(exc).__name__, getattr(getattr(exc, "reason", None), "errno", None))
"""
    result = lambda_harness.run(code)
    assert result.code_output() == "GET URLError 13\nPUT URLError 13\n", result.code_output()
    assert lambda_harness.blobs.size("sandbox/planted") is None


def test_user_code_cannot_read_the_runners_credentials(lambda_harness: Harness) -> None:
    from tests.sandbox.test_tenant_isolation import MEMORY_PROBE

    code = MEMORY_PROBE + """
import ctypes, os
ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # its own memory must read, or the probe proves nothing
found = {"env": sorted(k for k in os.environ if k.startswith("AWS")), "self": read_memory("self")}
leaks = []
for pid in os.listdir("/proc"):
    if not pid.isdigit() or int(pid) == os.getpid():
        continue
    for name in ("environ", "cmdline"):
        try:
            with open(f"/proc/{pid}/{name}", "rb") as handle:
                data = handle.read(1 << 20)
        except OSError:
            continue
        if b"canary" in data:
            leaks.append((pid, name))
    if read_memory(pid) == "read":  # a byte of another process's memory, wherever it is mapped
        leaks.append((pid, "mem"))
found["leaks"] = leaks
print(found)
"""
    result = lambda_harness.run(code)
    text = result.code_output()
    assert result.status == "ok", text
    assert json.loads(text.replace("'", '"')) == {"env": [], "self": "read", "leaks": []}, text
    assert "[redacted]" not in text  # nothing was caught by the last-resort redaction either
    assert not any(secret in json.dumps(result.model_dump()) for secret in CREDENTIALS.values())


def test_every_call_the_notes_say_is_refused_is_refused_in_lambda_mode(lambda_harness: Harness) -> None:
    """The same probe as tests/sandbox/test_seccomp_for_real.py, where Lambda runs the image: no
    namespaces at all, so the filter is the only barrier."""
    from tests.sandbox.test_seccomp_for_real import unfiltered
    from tests.seccomp_expectations import check, probe_code

    result = lambda_harness.run(probe_code())
    assert result.status == "ok", result.code_output() + lambda_harness.function.output()
    assert check(json.loads(result.outputs[0].text), unfiltered()) == []
