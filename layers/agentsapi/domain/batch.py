"""Batch conversations: a job of many requests, run one SQS message at a time by the worker.

Exactly-once where it matters: a request is claimed with a conditional write before it runs,
its conversation id is derived from (job, request) so a retry after a crash finds the stored
conversation instead of creating another, its outcome and the job's counters settle in one
transaction, and one caller alone wins the right to write the result files.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..batchstore import BatchStore
from ..blobs import BlobStore
from ..errors import ApiError, Conflict, InvalidRequest, NotFound
from ..jobqueue import JobQueue
from ..limits import too_deep
from ..models.batch import MAX_REQUESTS_PER_JOB, TERMINAL, BatchItem, BatchJob, CreateBatchJobRequest
from ..models.common import CLIENT_INPUT, new_id
from ..models.conversations import StartConversationRequest
from .agents import AgentService
from .conversations import ConversationService
from .files import FileService
from .metadata import metadata_matches
from .paging import all_matching

INBOX_PREFIX = "batch-inbox"


@dataclass(frozen=True)
class JobSelection:
    """The batch list's filters (each one empty: no filter) and its order."""

    statuses: frozenset[str] = frozenset()
    agent_id: str | None = None
    model: str | None = None
    metadata: dict[str, Any] | None = None
    created_after: int | None = None  # epoch seconds, exclusive
    created_by: str | None = None  # created_by_me: the caller's key
    newest_first: bool = True  # order_by "-created" (the default) or "created"

    def keeps(self, job: BatchJob) -> bool:
        return ((not self.statuses or job.status in self.statuses)
                and (not self.agent_id or job.agent_id == self.agent_id)
                and (not self.model or job.model == self.model)
                and (not self.metadata or metadata_matches(job.metadata, self.metadata))
                and (self.created_after is None or job.created_at > self.created_after)
                and (self.created_by is None or job.created_by == self.created_by))


class RequestInProgress(RuntimeError):
    """Another delivery of the same request holds its claim; retry this message later."""


def conversation_id_for(job_id: str, index: int) -> str:
    return "conv_" + hashlib.sha256(f"{job_id}:{index}".encode()).hexdigest()[:32]


class BatchService:
    def __init__(self, store: BatchStore, queue: JobQueue, files: FileService, conversations: ConversationService,
                 agents: AgentService, blobs: BlobStore | None = None, lease_s: int = 900, max_receives: int = 5,
                 max_json_depth: int = 64) -> None:
        self.store = store
        self.blobs = blobs
        self.queue = queue
        self.files = files
        self.conversations = conversations
        self.agents = agents
        self.lease_s = lease_s
        self.max_receives = max_receives
        self.max_json_depth = max_json_depth

    # -- the API side ---------------------------------------------------------------------------
    def create(self, ws: str, request: CreateBatchJobRequest, created_by: str | None = None) -> dict[str, Any]:
        if request.agent_id:
            self.agents.resolve_version(ws, request.agent_id, None)  # 404 for an unknown agent, now
        items = self._items(ws, request)
        if not items:
            raise InvalidRequest("the batch has no requests", param="requests")
        now = int(time.time())
        failed = sum(1 for i in items if i.state == "failed")
        job = BatchJob(id=new_id("batch_"), input_files=request.input_files or [], model=request.model,
                       agent_id=request.agent_id, metadata=request.metadata, created_at=now, created_by=created_by,
                       deadline=now + request.timeout_hours * 3600, total_requests=len(items),
                       completed_requests=failed, failed_requests=failed)
        self.store.create_job(ws, job, items)
        self.queue.send([{"ws": ws, "job_id": job.id, "index": i.index} for i in items if i.state == "pending"])
        if failed == len(items):
            self._finalize(ws, job.id)
        return self.get(ws, job.id)

    def _items(self, ws: str, request: CreateBatchJobRequest) -> list[BatchItem]:
        if request.requests:
            return [BatchItem(index=n, custom_id=r.custom_id, body=r.body) for n, r in enumerate(request.requests)]
        items: list[BatchItem] = []
        for file_id in request.input_files or []:
            _, data = self.files.content(ws, file_id)
            for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
                if not line.strip():
                    continue
                if len(items) == MAX_REQUESTS_PER_JOB:
                    # Counted before anything is stored: one job is at most what inline requests
                    # allow, so no workspace can queue (or lock the store with) millions at once.
                    raise InvalidRequest(f"input_files: a job holds at most {MAX_REQUESTS_PER_JOB} requests; "
                                         "split the file into several jobs", param="input_files")
                items.append(_parse_line(len(items), file_id, number, line, self.max_json_depth))
        return items

    def create_from_inbox(self, bucket: str, key: str) -> dict[str, Any] | None:
        """A JSONL object at ``batch-inbox/<ws>/<agent|model>/<agent id or model>/<name>.jsonl``
        becomes a job of that workspace, for pipelines that never call the API."""
        parts = key.split("/")
        if (len(parts) != 5 or parts[0] != INBOX_PREFIX or parts[2] not in ("agent", "model")
                or not parts[4].endswith(".jsonl") or self.blobs is None):
            return None
        ws, kind, target, name = parts[1], parts[2], parts[3], parts[4]
        data = self.blobs.get(key)
        if data is None:
            return None
        record = self.files.upload(ws, name, data, "batch", "application/jsonl", enforce_limit=False)
        target_field = {"agent_id": target} if kind == "agent" else {"model": target}
        request = CreateBatchJobRequest(endpoint="/v1/conversations", input_files=[record.id],
                                        metadata={"source": f"s3://{bucket}/{key}"}, **target_field)
        job = self.create(ws, request)
        self.blobs.delete(key)  # consumed: a re-sent notification finds nothing and starts nothing
        return job

    def get(self, ws: str, job_id: str, inline: bool = False) -> dict[str, Any]:
        job = self.store.get_job(ws, job_id)
        if job is None:
            raise NotFound(f"Batch job {job_id} not found", param="job_id")
        answer = job.to_api()
        if inline:  # the results themselves, as the output file's lines (none yet: an empty list)
            answer["outputs"] = self._outputs(ws, job.output_file)
        return answer

    def _outputs(self, ws: str, output_file: str | None) -> list[dict[str, Any]]:
        if output_file is None:
            return []
        _, content = self.files.content(ws, output_file)
        return [json.loads(line) for line in content.decode().splitlines() if line.strip()]

    def list(self, ws: str, page: int, page_size: int, selection: JobSelection | None = None) -> dict[str, Any]:
        selection = selection or JobSelection()
        jobs = all_matching(lambda limit, token: self.store.list_jobs(ws, limit, token), selection.keeps)
        jobs.sort(key=lambda job: (job.created_at, job.id), reverse=selection.newest_first)
        shown = jobs[page * page_size:(page + 1) * page_size]
        return {"object": "list", "data": [job.to_api() for job in shown], "total": len(jobs)}  # the API reports a total

    def cancel(self, ws: str, job_id: str) -> dict[str, Any]:
        job = self.store.get_job(ws, job_id)
        if job is None:
            raise NotFound(f"Batch job {job_id} not found", param="job_id")
        if self.store.request_cancel(ws, job_id):
            self._finalize_if_done(ws, job_id)
        return self.get(ws, job_id)

    # -- the worker side --------------------------------------------------------------------------
    def process(self, ws: str, job_id: str, index: int, receive_count: int = 1) -> None:
        """Run one request. Returns normally when the message is dealt with (run, or nothing to
        do); raises for a transient failure, so the message is retried."""
        job = self.store.get_job(ws, job_id)
        if job is None or job.status in TERMINAL:
            return
        now = int(time.time())
        if not self.store.claim(ws, job_id, index, now, now + self.lease_s):
            current = self.store.get_item(ws, job_id, index)
            if current is not None and current.state == "running":
                # A duplicate delivery while another worker runs it: keep this copy of the
                # message (retry later) instead of acknowledging it. If that worker fails and
                # gives the claim back, this copy is what runs the request.
                raise RequestInProgress(f"request {index} of {job_id} is running elsewhere")
            return  # settled already: a redelivery
        item = self.store.get_item(ws, job_id, index)
        assert item is not None
        if job.status == "CANCELLATION_REQUESTED":
            self._settle(ws, job_id, item.model_copy(update={"state": "failed", "error": "cancelled"}))
            return
        if now > job.deadline:
            self._settle(ws, job_id, item.model_copy(update={"state": "failed", "error": "timeout_hours exceeded"}))
            return
        self.store.mark_running(ws, job_id, now)
        try:
            response = self._run(ws, job, item)
        except ApiError as exc:
            if exc.status >= 500 and receive_count < self.max_receives:
                self.store.release(ws, job_id, index)
                raise
            self._settle(ws, job_id, item.model_copy(update={"state": "failed", "error": exc.message}))
            return
        except Exception as exc:
            if receive_count < self.max_receives:
                self.store.release(ws, job_id, index)
                raise
            self._settle(ws, job_id, item.model_copy(update={"state": "failed", "error": f"failed after "
                                                             f"{receive_count} attempts: {type(exc).__name__}"}))
            return
        self._settle(ws, job_id, item.model_copy(update={"state": "succeeded", "response": response}))

    def fail_poisoned(self, ws: str, job_id: str, index: int, reason: str) -> None:
        """For a message that reached the dead-letter queue: the request counts as failed, with why."""
        now = int(time.time())
        if self.store.claim(ws, job_id, index, now, now + self.lease_s):
            item = self.store.get_item(ws, job_id, index)
            assert item is not None
            self._settle(ws, job_id, item.model_copy(update={"state": "failed", "error": reason}))
            return
        current = self.store.get_item(ws, job_id, index)
        if current is not None and current.state == "running":
            # Claimed by a worker that died mid-request: its lease still holds. Keep this dead
            # letter (retried later) until the lease runs out, or the job would never finish.
            raise RequestInProgress(f"request {index} of {job_id} is still claimed; retry after its lease")

    def _run(self, ws: str, job: BatchJob, item: BatchItem) -> dict[str, Any]:
        body = {**(item.body or {}), "stream": False}
        body.pop("agent_id", None)
        body.pop("model", None)
        body["agent_id" if job.agent_id else "model"] = job.agent_id or job.model
        # Its conversation says which job it belongs to (GET /v1/conversations?metadata=... finds a
        # job's conversations; the playground keeps them out of its chat history).
        metadata = body.get("metadata")
        if metadata is None or isinstance(metadata, dict):  # anything else is refused as it is, below
            body["metadata"] = {**(metadata or {}), "batch_job_id": job.id}
        try:
            request = StartConversationRequest.model_validate(body, context=CLIENT_INPUT)
        except ValidationError as exc:
            fields = ", ".join(".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()[:5])
            raise InvalidRequest(f"invalid request body: {fields}", param="body") from exc
        conversation_id = conversation_id_for(job.id, item.index)
        # A previous attempt stored this conversation, then died before settling: use it. Looked
        # up first, so the model and the code do not run again (the store's Conflict alone would
        # only stop the second result from being stored, after running everything once more).
        stored = self._stored_response(ws, conversation_id)
        if stored is not None:
            return stored
        try:
            return self.conversations.start(ws, request, conversation_id=conversation_id).buffered()
        except Conflict:  # stored meanwhile by a concurrent attempt
            stored = self._stored_response(ws, conversation_id)
            if stored is None:
                raise
            return stored

    def _stored_response(self, ws: str, conversation_id: str) -> dict[str, Any] | None:
        try:
            history = self.conversations.history(ws, conversation_id)
        except NotFound:
            return None
        return {"object": "conversation.response", "conversation_id": conversation_id,
                "outputs": [e for e in history["entries"] if e["type"] != "message.input"], "usage": {}}

    def _settle(self, ws: str, job_id: str, item: BatchItem) -> None:
        try:
            settled = self.store.settle(ws, job_id, item)
        except Exception:
            # Give the claim back so the retried message can finish it (a stored conversation
            # is found again by its deterministic id, not run twice).
            self.store.release(ws, job_id, item.index)
            raise
        if settled:
            self._finalize_if_done(ws, job_id)

    def _finalize_if_done(self, ws: str, job_id: str) -> None:
        job = self.store.get_job(ws, job_id)
        if job is not None and job.completed_requests >= job.total_requests:
            self._finalize(ws, job_id)

    def _finalize(self, ws: str, job_id: str) -> None:
        if not self.store.claim_finalization(ws, job_id):
            return
        job = self.store.get_job(ws, job_id)
        assert job is not None
        items = sorted(self.store.items(ws, job_id), key=lambda i: i.index)
        outputs = [_output_line(job_id, i) for i in items if i.state == "succeeded"]
        errors = [_output_line(job_id, i) for i in items if i.state != "succeeded"]
        output_file = self._write(ws, f"{job_id}.jsonl", outputs, "batch_result")
        error_file = self._write(ws, f"{job_id}_error.jsonl", errors, "batch_error")
        if job.status == "CANCELLATION_REQUESTED":
            status = "CANCELLED"
        elif any(i.error == "timeout_hours exceeded" for i in items):
            status = "TIMEOUT_EXCEEDED"
        elif job.succeeded_requests == 0:
            status = "FAILED"
        else:
            status = "SUCCESS"
        self.store.finish(ws, job_id, status, int(time.time()), output_file, error_file)

    def _write(self, ws: str, name: str, lines: list[dict[str, Any]], sample_type: str) -> str | None:
        if not lines:
            return None
        content = "".join(json.dumps(line) + "\n" for line in lines).encode()
        # The job's results: counted against the workspace's quota, never refused (the job is done).
        record = self.files.upload(ws, name, content, "batch", "application/jsonl", source="mistral",
                                   sample_type=sample_type, enforce_limit=False, enforce_quota=False)
        return record.id


def _parse_line(index: int, file_id: str, number: int, line: str, max_depth: int) -> BatchItem:
    where = f"{file_id} line {number}"
    too_deep_error = BatchItem(index=index, state="failed", error=f"{where}: JSON nested deeper than {max_depth} levels")
    try:
        value = json.loads(line)
    except RecursionError:
        return too_deep_error
    except ValueError:
        return BatchItem(index=index, state="failed", error=f"{where}: not JSON")
    if too_deep(value, max_depth) is not None:  # stored as the request's body: it must read back
        return too_deep_error
    if not isinstance(value, dict) or not isinstance(value.get("body"), dict):
        return BatchItem(index=index, custom_id=value.get("custom_id") if isinstance(value, dict) else None,
                         state="failed", error=f"{where}: expected an object with a 'body' object")
    custom_id = value.get("custom_id")
    return BatchItem(index=index, custom_id=str(custom_id) if custom_id is not None else None, body=value["body"])


def _output_line(job_id: str, item: BatchItem) -> dict[str, Any]:
    if item.state == "succeeded":
        return {"id": f"{job_id}-{item.index}", "custom_id": item.custom_id,
                "response": {"status_code": 200, "body": item.response}, "error": None}
    return {"id": f"{job_id}-{item.index}", "custom_id": item.custom_id, "response": None,
            "error": {"message": item.error or "failed", "code": None}}
