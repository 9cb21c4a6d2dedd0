"""Batch jobs (Mistral's Batch API, endpoint /v1/conversations), in the shapes the SDK parses."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import Field, model_validator

from .common import ApiModel, StrictModel

Status = Literal["QUEUED", "RUNNING", "SUCCESS", "FAILED", "TIMEOUT_EXCEEDED", "CANCELLATION_REQUESTED", "CANCELLED"]
STATUSES: tuple[str, ...] = get_args(Status)
TERMINAL = ("SUCCESS", "FAILED", "TIMEOUT_EXCEEDED", "CANCELLED")
MAX_INLINE_REQUESTS = 10_000
MAX_REQUESTS_PER_JOB = MAX_INLINE_REQUESTS  # from inline requests or input files alike
MAX_INPUT_FILES = 100


class BatchRequest(StrictModel):
    custom_id: str | None = None
    body: dict[str, Any]


class CreateBatchJobRequest(StrictModel):
    endpoint: Literal["/v1/conversations"]
    input_files: Annotated[list[str], Field(max_length=MAX_INPUT_FILES)] | None = None
    requests: Annotated[list[BatchRequest], Field(max_length=MAX_INLINE_REQUESTS)] | None = None
    model: str | None = None
    agent_id: str | None = None
    metadata: dict[str, str] | None = None
    timeout_hours: Annotated[int, Field(ge=1, le=168)] = 24

    @model_validator(mode="after")
    def _one_source(self) -> CreateBatchJobRequest:
        if bool(self.input_files) == bool(self.requests):
            raise ValueError("give exactly one of input_files or requests")
        if self.input_files and len(set(self.input_files)) != len(self.input_files):
            raise ValueError("input_files names a file more than once")
        if bool(self.agent_id) == bool(self.model):
            raise ValueError("give exactly one of agent_id or model")
        return self


class BatchJob(ApiModel):
    """The job's head item. Counters live as numeric attributes (updated atomically) and are
    merged in when the job is read."""

    id: str
    input_files: list[str] = Field(default_factory=list)
    endpoint: str = "/v1/conversations"
    model: str | None = None
    agent_id: str | None = None
    metadata: dict[str, str] | None = None
    status: Status = "QUEUED"
    created_at: int
    created_by: str | None = None  # the key that created it (internal: list's created_by_me)
    started_at: int | None = None
    completed_at: int | None = None
    deadline: int
    total_requests: int = 0
    completed_requests: int = 0
    succeeded_requests: int = 0
    failed_requests: int = 0
    output_file: str | None = None
    error_file: str | None = None
    errors: list[dict[str, Any]] = Field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude={"deadline", "created_by"})
        data["object"] = "batch"
        return data


class BatchItem(ApiModel):
    """One request of a job, and what became of it."""

    index: int
    custom_id: str | None = None
    body: dict[str, Any] | None = None
    state: Literal["pending", "running", "succeeded", "failed"] = "pending"
    response: dict[str, Any] | None = None
    error: str | None = None
