"""The sandbox image's handler run the way Lambda runs it, on this machine.

- ``RuntimeApi``: a stand-in for Lambda's Runtime API on 127.0.0.1 (the endpoints awslambdaric
  calls: next, response, error, init/error), fed by ``invoke``.
- ``SandboxFunction``: the function process. The image's entry point (``awslambdaric`` with
  ``sandbox_runner.handler.handler``) under one unprivileged uid, a read-only root but ``/tmp``,
  Lambda-style environment (function name, memory, and credentials that must never leak), in
  **the host's network namespace**: the Runtime API and the S3 stand-in are reachable on
  loopback, exactly as Lambda's are from inside a function. Only the pid namespace is its own,
  as a microVM's would be, so the runner's kill sweep of its uid touches nothing else here.
- ``HarnessLambdaClient``: what ``LambdaSandbox`` calls as its boto3 Lambda client; it invokes
  through the stand-in and answers in boto3's shape.

What user code cannot do here is the seccomp filter's doing (no AF_INET socket), not a network
namespace: the tests in test_lambda_mode.py prove it against live endpoints.
"""

from __future__ import annotations

import contextlib
import io
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534
PREFIX = "/2018-06-01/runtime"
# The runtime interface client, installed beside the sandbox venv by `make setup` (the image's
# base provides its own).
RIC_DIR_NAME = "lambda-ric"
TASK_ROOT = "/var/task"


class RuntimeApi:
    """Lambda's Runtime API, for one function instance: one invocation at a time."""

    def __init__(self) -> None:
        self.pending: queue.Queue[tuple[str, bytes, float, str | None]] = queue.Queue()
        self.answers: dict[str, queue.Queue[tuple[int, bytes, str | None]]] = {}
        self.requests: list[str] = []  # every request line received, to see who called
        self.init_error: bytes | None = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                api.requests.append(f"GET {self.path}")
                if self.path != f"{PREFIX}/invocation/next":
                    self._answer(404, b'{"errorMessage": "no such endpoint"}')
                    return
                request_id, body, deadline, tenant = api.pending.get()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(deadline * 1000)))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                                 "arn:aws:lambda:us-east-1:123456789012:function:harness-tenant-sandbox")
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
                if tenant:
                    self.send_header("Lambda-Runtime-Aws-Tenant-Id", tenant)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                api.requests.append(f"POST {self.path}")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path[len(PREFIX):].strip("/").split("/")
                if parts == ["init", "error"]:
                    api.init_error = body
                    self._answer(202, b"{}")
                elif len(parts) == 3 and parts[0] == "invocation" and parts[1] in api.answers:
                    # An error report is what boto3 shows as FunctionError: "Unhandled".
                    api.answers[parts[1]].put((200, body, "Unhandled" if parts[2] == "error" else None))
                    self._answer(202, b"{}")
                else:
                    self._answer(400, b'{"errorMessage": "unknown invocation"}')

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, event: bytes, timeout_s: float, tenant: str | None = None) -> tuple[bytes, str | None]:
        """Hand the function one event; its response (or error) body and Lambda's FunctionError."""
        request_id = str(uuid.uuid4())
        self.answers[request_id] = queue.Queue()
        self.pending.put((request_id, event, time.time() + timeout_s, tenant))
        try:
            _, body, error = self.answers[request_id].get(timeout=timeout_s + 30)
        except queue.Empty:
            raise TimeoutError("the function did not answer") from None
        finally:
            self.answers.pop(request_id, None)
        return body, error

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# Lambda is reported to apply a seccomp filter of its own that refuses nested ones with EPERM
# (openai/codex#38779; AWS's Lambda security overview). This launcher puts the function under such a
# parent filter, then execs it: seccomp(2) and prctl(PR_SET_SECCOMP) answer EPERM, all else runs.
REFUSE_NESTED_SECCOMP = r"""
import ctypes, os, platform, struct, sys
SECCOMP = {"x86_64": 317, "aarch64": 277}[platform.machine()]
PRCTL = {"x86_64": 157, "aarch64": 167}[platform.machine()]
ALLOW, EPERM = 0x7FFF0000, 0x00050000 | 1
def op(code, k, jt=0, jf=0):
    return struct.pack("HBBI", code, jt, jf, k)
program = b"".join([
    op(0x20, 0),                  # A = syscall number
    op(0x15, SECCOMP, 0, 1),      # seccomp(2)?
    op(0x06, EPERM),
    op(0x15, PRCTL, 0, 3),        # prctl?
    op(0x20, 16),                 # A = its first argument
    op(0x15, 22, 0, 1),           # PR_SET_SECCOMP?
    op(0x06, EPERM),
    op(0x06, ALLOW),
])
class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
libc = ctypes.CDLL(None, use_errno=True)
buffer = ctypes.create_string_buffer(program, len(program))
assert libc.prctl(38, 1, 0, 0, 0) == 0
assert libc.prctl(22, 2, ctypes.byref(Prog(len(program) // 8, ctypes.addressof(buffer))), 0, 0) == 0
os.execv(sys.argv[1], sys.argv[1:])
"""


class SandboxFunction:
    """The sandbox image's entry point, polling ``api`` as Lambda's runtime would make it (under a
    parent filter that refuses nested seccomp filters, with ``refuse_nested_seccomp``)."""

    def __init__(self, api: RuntimeApi, python: str, env: dict[str, str], memory_mb: int = 2048,
                 refuse_nested_seccomp: bool = False) -> None:
        from agentsapi.adapters.local_sandbox import _world_readable_copy

        self.code_dir = _world_readable_copy(str(ROOT / "sandbox_image"))
        self.tmp = tempfile.mkdtemp(prefix="lambda-harness-tmp-")
        if os.geteuid() == 0:
            os.chown(self.tmp, NOBODY, NOBODY)
        venv = str(Path(python).parent.parent)
        ric = str(Path(venv) / RIC_DIR_NAME)
        function_env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": "/tmp",
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "AWS_LAMBDA_FUNCTION_NAME": "harness-tenant-sandbox",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_REGION": "us-east-1",
            "LAMBDA_TASK_ROOT": TASK_ROOT,
            "PYTHONPATH": f"{TASK_ROOT}:{ric}",
            # As the image sets them (sandbox_image/Dockerfile).
            "SANDBOX_WORK_ROOT": "/tmp/sbx",
            "SANDBOX_WIPE_SCRATCH_AT_INIT": "1",
            "SANDBOX_SCRATCH_DIRS": "/tmp",
            **env,
        }
        prefix: list[str] = []
        if os.geteuid() == 0:
            prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                      "--inh-caps=-all", "--bounding-set=-all", "--"]
        # --as-pid-1: bubblewrap's own init is no part of a Lambda environment; the runtime is the
        # only process there before the runner starts its zygote.
        argv = [*prefix, shutil.which("bwrap") or "bwrap", "--unshare-user", "--unshare-pid", "--as-pid-1",
                "--die-with-parent", "--new-session", "--clearenv"]
        for key, value in function_env.items():
            argv += ["--setenv", key, value]
        # A root of its own, read-only once built (as Lambda's): the system, the interpreter, the
        # code at Lambda's task root, and /tmp the only writable place.
        argv += ["--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
                 "--symlink", "usr/bin", "/bin", "--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache",
                 "--ro-bind-try", "/etc/fonts", "/etc/fonts", "--proc", "/proc", "--dev", "/dev", "--bind", self.tmp, "/tmp", "--ro-bind", venv, venv,
                 "--ro-bind", self.code_dir, TASK_ROOT, "--remount-ro", "/", "--chdir", TASK_ROOT, "--"]
        if refuse_nested_seccomp:
            argv += [python, "-I", "-c", REFUSE_NESTED_SECCOMP]
        argv += [python, "-m", "awslambdaric", "sandbox_runner.handler.handler"]
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - the function's output, for failing tests
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, 9)
        self.process.wait(timeout=10)
        shutil.rmtree(self.tmp, ignore_errors=True)
        shutil.rmtree(self.code_dir, ignore_errors=True)


class HarnessLambdaClient:
    """The slice of boto3's Lambda client that LambdaSandbox uses, served by the harness."""

    def __init__(self, api: RuntimeApi, timeout_s: float = 60.0) -> None:
        self.api, self.timeout_s = api, timeout_s
        self.tenants: list[str] = []

    def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes, TenantId: str | None = None,  # noqa: N803
               **_: Any) -> dict[str, Any]:
        self.tenants.append(str(TenantId))
        body, error = self.api.invoke(Payload, self.timeout_s, TenantId)
        response: dict[str, Any] = {"StatusCode": 200, "Payload": io.BytesIO(body)}
        if error:
            response["FunctionError"] = error
        return response


SANDBOX_PYTHON = os.environ.get("SANDBOX_PYTHON", "/opt/agents-sandbox/venv/bin/python")
BUCKET = "harness-bucket"
# Credentials the function's role would give it: they must never reach user code.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "ASIAHARNESSCANARY01", "AWS_SECRET_ACCESS_KEY": "harness-secret-canary-8d2f61",
               "AWS_SESSION_TOKEN": "harness-token-canary-44e0b9"}


def available() -> bool:
    """awslambdaric is installed beside the sandbox venv (`make test` does it)."""
    return (Path(SANDBOX_PYTHON).parent.parent / RIC_DIR_NAME).is_dir()


class Harness:
    """The whole rig: S3 (moto, server mode), the Runtime API, the function, and the real
    LambdaSandbox adapter wired to them, as the conversation runners use it in AWS."""

    def __init__(self, env: dict[str, str] | None = None, refuse_nested_seccomp: bool = False) -> None:
        import boto3
        from moto.server import ThreadedMotoServer

        from agentsapi.adapters.lambda_sandbox import LambdaSandbox
        from agentsapi.adapters.s3_blobs import S3Blobs

        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.s3 = boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
                               aws_access_key_id="test", aws_secret_access_key="test")  # noqa: S106 - moto's
        self.blobs = S3Blobs(self.s3, BUCKET)
        self.ensure_bucket()
        self.api = RuntimeApi()
        self.function = SandboxFunction(self.api, SANDBOX_PYTHON, {**CREDENTIALS, **(env or {})},
                                        refuse_nested_seccomp=refuse_nested_seccomp)
        self.client = HarnessLambdaClient(self.api)
        self.sandbox = LambdaSandbox(self.client, "harness-tenant-sandbox", presigner=self.s3, execution_timeout_s=20)

    def run(self, code: str, **fields: Any) -> Any:
        result = self.attempt(code, **fields)
        assert result.status != "unavailable", (result.notes, self.function.output())
        return result

    def attempt(self, code: str, **fields: Any) -> Any:
        """An execution, whatever comes of it (``run`` insists that code could run at all)."""
        from agentsapi.sandbox.port import ExecutionRequest

        fields.setdefault("tenant", "ws-a")
        return self.sandbox.execute(ExecutionRequest(code=code, blobs=self.blobs, timeout_s=20, **fields))

    def keys(self, prefix: str = "") -> list[str]:
        return self.blobs.keys(prefix)

    def ensure_bucket(self) -> None:
        """(Re)create the bucket: moto's server shares this process's moto state, which tests that
        mock AWS in process reset."""
        from botocore.exceptions import ClientError

        try:
            self.s3.head_bucket(Bucket=BUCKET)
        except ClientError:
            self.s3.create_bucket(Bucket=BUCKET)

    def close(self) -> None:
        self.function.close()
        self.api.close()
        self.moto.stop()
