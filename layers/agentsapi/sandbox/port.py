"""The Sandbox port and the API side's view of the sandbox protocol (see sandbox_image/sandbox_runner/protocol.py)."""

from __future__ import annotations

import base64
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidatorFunctionWrapHandler, field_validator

Status = Literal["ok", "error", "timeout", "memory", "output_truncated", "crashed", "unavailable"]


class SandboxFile(BaseModel):
    """A file handed to, or returned by, the code: its bytes inline (``content_b64``), or by
    reference: ``key``, a blob in the blob store (inputs; outputs once the adapter has them),
    ``ref``, the sandbox's name for an output (the adapter turns it into a ``key``)."""

    name: str
    mime_type: str = "application/octet-stream"
    size: int = 0
    content_b64: str = ""
    key: str | None = None
    ref: str | None = None

    def content(self) -> bytes:
        return base64.b64decode(self.content_b64)


class OutputRun(BaseModel):
    stream: Literal["stdout", "stderr"]
    text: str


class ExecutionError(BaseModel):
    name: str = ""
    value: str = ""
    traceback: str = ""


class SessionState(BaseModel):
    """An interpreter session's state: opaque bytes the API side stores and hands back, never opens;
    inline (``state_b64``) or by reference (``ref`` from the sandbox, ``key`` once in the blob store)."""

    state_b64: str = ""
    bytes: int = 0
    key: str | None = None
    ref: str | None = None

    def content(self) -> bytes:
        return base64.b64decode(self.state_b64)


class DisplayTable(BaseModel):
    columns: list[str] = Field(max_length=20)
    index: list[str] = Field(max_length=50)
    rows: list[list[str]] = Field(max_length=50)
    shape: tuple[int, int]
    index_name: str = ""


class ExecutionResult(BaseModel):
    """A sandbox response, validated: the API side does not trust its shape either."""

    model_config = ConfigDict(extra="ignore")

    status: Status
    outputs: list[OutputRun] = Field(default_factory=list)
    display: str | None = None
    # A trailing DataFrame's first rows as text (the playground shows a table); a malformed one is dropped.
    table: DisplayTable | None = None
    error: ExecutionError | None = None
    exit_code: int | None = None
    signal: int | None = None
    duration_ms: float = 0.0
    files: list[SandboxFile] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    isolation: dict[str, object] = Field(default_factory=dict)
    session: SessionState | None = None
    # By reference: the blob prefix holding this execution's outputs until the turn adopts them.
    exchange_prefix: str | None = None

    @field_validator("table", mode="wrap")
    @classmethod
    def _drop_a_malformed_table(cls, value: object, handler: ValidatorFunctionWrapHandler) -> DisplayTable | None:
        try:
            return handler(value)  # type: ignore[no-any-return]
        except ValidationError:
            return None  # the text display is what counts; the table is a nicety

    @classmethod
    def unavailable(cls, why: str) -> ExecutionResult:
        return cls(status="unavailable", notes=[f"code execution is unavailable: {why}"])

    def code_output(self) -> str:
        """What the model (and the user, in ``info.code_output``) reads: what a person would want."""
        parts = [run.text for run in self.outputs]
        text = "".join(parts)
        if self.display is not None:
            if text and not text.endswith("\n"):
                text += "\n"
            text += self.display + "\n"
        if self.error is not None and self.error.traceback:
            if text and not text.endswith("\n"):
                text += "\n"
            text += self.error.traceback
        for note in self.notes:
            if text and not text.endswith("\n"):
                text += "\n"
            text += f"[{note}]\n"
        return text


class ExecutionRequest(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    code: str
    timeout_s: float | None = None
    files: list[SandboxFile] = Field(default_factory=list)
    carry_session: bool = False  # ask for the state after the run (and restore the one given)
    session_state: bytes | None = None  # inline
    session_key: str | None = None  # by reference: the blob holding it
    # Whom the code runs for: the caller's workspace, set by the runtime. Adapters use it to choose
    # where the code runs (in AWS, Lambda's TenantId); it is never part of the event, so the
    # sandbox is not told it and nothing inside could act on a forged one.
    tenant: str | None = None
    # The blob store that ``key``s (input files, session) name; adapters move data from and to
    # it by reference. Never part of the event.
    blobs: Any = Field(default=None, exclude=True)
    # What the workspace may still store (its quota's room; None: no quota). The sandbox hands
    # back files and state within it, and the adapter copies no more than it.
    room_bytes: int | None = None
    # Told of each whole line the cell prints, as it prints it (stream, text), by adapters that
    # can (the local pool); others give the output at the end only. Never part of the event.
    on_output: Any = Field(default=None, exclude=True)
    # Set when the caller no longer wants the result (the client closed the stream): an adapter
    # that can stops the execution at once. Never part of the event.
    cancelled: Any = Field(default=None, exclude=True)

    def by_reference(self) -> bool:
        return self.blobs is not None and (self.carry_session or any(f.key for f in self.files))

    def inlined(self) -> ExecutionRequest:
        """The same request with every input by reference loaded inline (for a sandbox without an
        exchange: small data only, bounded by its payload)."""
        if self.blobs is None:
            return self
        files = [f.model_copy(update={"key": None, "content_b64": base64.b64encode(self.blobs.get(f.key) or b"").decode()})
                 if f.key else f for f in self.files]
        state = self.blobs.get(self.session_key) if self.session_key else self.session_state
        return self.model_copy(update={"files": files, "session_key": None, "session_state": state, "blobs": None})

    def to_event(self) -> dict[str, object]:
        event: dict[str, object] = {"code": self.code}
        if self.timeout_s is not None:
            event["timeout_s"] = self.timeout_s
        if self.files:
            event["files"] = [{"name": f.name, "content_b64": f.content_b64} for f in self.files]
        if self.carry_session:
            state = base64.b64encode(self.session_state).decode("ascii") if self.session_state else None
            event["session"] = {"state_b64": state}
        if self.room_bytes is not None:
            event["room_bytes"] = max(0, self.room_bytes)
        return event


class Sandbox(Protocol):
    """Runs one cell of code somewhere isolated. Never raises for the code's own failures."""

    def execute(self, request: ExecutionRequest) -> ExecutionResult: ...


def result_from_response(payload: object) -> ExecutionResult:
    """Validate a sandbox response; anything malformed becomes a clear ``crashed`` result."""
    if isinstance(payload, dict) and payload.get("status") == "bad_request":
        return ExecutionResult(status="error", notes=[f"the sandbox refused the request: {payload.get('message')}"])
    try:
        result = ExecutionResult.model_validate(payload)
    except ValueError:
        return ExecutionResult(status="crashed", notes=["the sandbox returned a malformed response"])
    # Blob keys and the exchange prefix are the adapter's to set, from refs it checked: a response
    # naming them could make the turn adopt (move) or discard any blob of any workspace.
    result.exchange_prefix = None
    for produced in result.files:
        produced.key = None
    if result.session is not None:
        result.session.key = None
    return result
