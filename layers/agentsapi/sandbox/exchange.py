"""What both sandbox adapters' exchanges share: the bound on one execution's inputs, and the
errors that stop an execution before anything runs (local_exchange.py, s3_exchange.py)."""

from __future__ import annotations

from .port import ExecutionRequest


class InputsTooLarge(ValueError):
    """The inputs of one execution are over its limit; nothing was run."""


class InputMissing(LookupError):
    """A file or session the execution names is no longer in the blob store."""


def check_inputs_size(request: ExecutionRequest, max_input_bytes: int) -> None:
    """Refuse an execution whose files and session state, as stored, exceed ``max_input_bytes``
    before a byte of them moves (the runner checks again as it takes them)."""
    state = request.blobs.size(request.session_key) if request.session_key else 0
    total = sum(f.size for f in request.files if f.key) + (state or 0)
    if total > max_input_bytes:
        raise InputsTooLarge(f"the files and session state of this execution come to {total} bytes, over the "
                             f"{max_input_bytes}-byte limit of one execution")
