"""Production sandbox invoker: a synchronous Lambda invoke of the sandbox image function.

The function runs in Lambda's tenant isolation mode (template.yaml: ``TenancyConfig``), so every
invoke names a tenant and Lambda runs it only in execution environments dedicated to that tenant:
what one workspace's code leaves in an environment (processes, /tmp, IPC objects, memory) is
never seen by another workspace's code. The tenant is an invoke parameter, not part of the event.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..sandbox.exchange import InputMissing, InputsTooLarge
from ..sandbox.port import ExecutionRequest, ExecutionResult, result_from_response
from .s3_exchange import S3Exchange

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # Lambda's synchronous request/response limit
# Headroom above the execution deadline for an image cold start (~10 s), the runner's own start-up,
# collection and sweep, and past the sandbox function's own timeout (template.yaml: the execution's limit + 120 s): the invoke
# always hears back, whatever the sandbox does.
INVOKE_HEADROOM_S = 150


def invoke_config(execution_timeout_s: float) -> Config:
    """boto3's defaults would cut the invoke at 60 s and retry it, running the same code again:
    wait for the deadline plus headroom, and never retry an execution."""
    return Config(read_timeout=int(execution_timeout_s) + INVOKE_HEADROOM_S, connect_timeout=5,
                  retries={"total_max_attempts": 1, "mode": "standard"})


def tenant_id(workspace: str) -> str:
    """Lambda's TenantId for a workspace: the SHA-256 of its name, in hex.

    A TenantId is 1-256 characters of ``[a-zA-Z0-9._:/=+-@ ]`` and travels as an HTTP header
    (``X-Amz-Tenant-Id``), while a workspace name is whatever its key record says. The hash is
    always 64 lower-case hex characters, distinct workspaces get distinct ids, and no question of
    case folding or header whitespace trimming on Lambda's side can make two workspaces share one.
    """
    return hashlib.sha256(workspace.encode("utf-8", "surrogatepass")).hexdigest()


class LambdaSandbox:
    """Data by reference through presigned S3 URLs (s3_exchange.py) when the blob store is S3;
    inline, within the payload limit, otherwise."""

    def __init__(self, client: Any, function_name: str, presigner: Any = None, execution_timeout_s: float = 30.0,
                 max_input_bytes: int = 1024 * 1024 * 1024, resolve: bool = True) -> None:
        self.client = client
        self.function_name = function_name
        self.presigner = presigner  # an S3 client for signing URLs the sandbox can reach (None: the blob store's)
        # URLs expire soon after the execution's deadline: the invoke's own read timeout.
        self.url_ttl_s = int(execution_timeout_s) + INVOKE_HEADROOM_S
        self.max_input_bytes = max_input_bytes
        self.resolve = resolve

    def execute(self, request: ExecutionRequest) -> ExecutionResult:
        if not request.tenant:
            # Fail closed: never run code in an environment that is not tied to one workspace.
            return ExecutionResult.unavailable("the execution names no workspace to isolate it in, so it was not run")
        bucket = getattr(request.blobs, "bucket", None)
        if not (request.by_reference() and bucket):
            return self._invoke(request.inlined().to_event(), request.tenant)
        exchange = S3Exchange(request.blobs, self.presigner or request.blobs.client, self.url_ttl_s,
                              self.max_input_bytes, self.resolve)
        try:
            event = exchange.send(request, request.to_event())
            result = self._invoke(event, request.tenant)
            exchange.receive(result, request.room_bytes)
            return result
        except (InputsTooLarge, InputMissing) as exc:
            return ExecutionResult(status="error", notes=[str(exc)])
        finally:
            exchange.close()

    def _invoke(self, event: dict[str, object], tenant: str) -> ExecutionResult:
        payload = json.dumps(event).encode()
        if len(payload) > MAX_PAYLOAD_BYTES:
            return ExecutionResult(status="error", notes=["the code and its input files exceed Lambda's 6 MB payload limit"])
        try:
            response = self.client.invoke(FunctionName=self.function_name, InvocationType="RequestResponse",
                                          Payload=payload, TenantId=tenant_id(tenant))
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code") or type(exc).__name__)
            busy = " - the sandbox is at capacity, try again shortly" if code == "TooManyRequestsException" else ""
            return ExecutionResult.unavailable(f"the sandbox function could not be invoked ({code}){busy}")
        except BotoCoreError as exc:
            return ExecutionResult.unavailable(f"the sandbox function could not be invoked ({type(exc).__name__})")
        body = response["Payload"].read()
        if response.get("FunctionError"):
            # Timeouts, out-of-memory and a deliberate reset after a tainted run all land here.
            return ExecutionResult(status="crashed", notes=[f"the sandbox function failed ({response['FunctionError']}); "
                                                            "the next execution gets a fresh environment"])
        try:
            result = result_from_response(json.loads(body))
        except ValueError:
            return ExecutionResult(status="crashed", notes=["the sandbox returned a malformed response"])
        # Said by this side, which chose where the code ran, never taken from the sandbox's answer.
        result.isolation["tenant_isolation"] = "per workspace: Lambda tenant isolation mode (TenantId)"
        return result
