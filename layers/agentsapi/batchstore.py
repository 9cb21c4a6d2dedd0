"""The batch-store port: jobs, their requests, and the conditional transitions that make a
request run once (see domain/batch.py). Adapters: DynamoDB (adapters/dynamodb_batch.py) and
SQLite (adapters/sqlite/batch.py); tests/contract/test_batch_store_contract.py holds both to it."""

from __future__ import annotations

from typing import Protocol

from .models.batch import BatchItem, BatchJob
from .store import Page


class BatchStore(Protocol):
    def create_job(self, ws: str, job: BatchJob, items: list[BatchItem]) -> None: ...
    def get_job(self, ws: str, job_id: str) -> BatchJob | None: ...
    def list_jobs(self, ws: str, limit: int, token: str | None) -> Page:
        """Newest first; a token is good only for the workspace's listing that issued it."""
        ...
    def get_item(self, ws: str, job_id: str, index: int) -> BatchItem | None: ...
    def items(self, ws: str, job_id: str) -> list[BatchItem]: ...

    def claim(self, ws: str, job_id: str, index: int, now: int, lease_until: int) -> bool:
        """pending → running until ``lease_until``; or take over a running claim whose lease is
        before ``now`` (its worker died). False for anyone else."""
        ...
    def release(self, ws: str, job_id: str, index: int) -> None:
        """running → pending (a transient failure gives the claim back)."""
        ...
    def settle(self, ws: str, job_id: str, item: BatchItem) -> bool:
        """running → ``item.state`` with its outcome, and the job's counters, atomically; False
        (nothing changed) if the request was not running."""
        ...
    def mark_running(self, ws: str, job_id: str, now: int) -> None:
        """QUEUED → RUNNING with started_at, once."""
        ...
    def request_cancel(self, ws: str, job_id: str) -> bool:
        """QUEUED or RUNNING → CANCELLATION_REQUESTED; False otherwise."""
        ...
    def claim_finalization(self, ws: str, job_id: str) -> bool:
        """True for exactly one caller per job: the one that writes the result files."""
        ...
    def finish(self, ws: str, job_id: str, status: str, now: int, output_file: str | None,
               error_file: str | None) -> None: ...
