"""What both sandbox adapters' exchanges share (local_exchange.py, s3_exchange.py): the bound on
one execution's inputs, the errors that stop an execution before anything runs, how the event
names inputs held by reference, and how the outputs a response names are adopted. The adapters
differ only in where a byte goes: a directory on the worker's tmpfs, or the bucket's sandbox/."""

from __future__ import annotations

import re
from collections.abc import Callable

from .port import ExecutionRequest, ExecutionResult

# The refs the runner gives what it hands over (sandbox_runner/exchange.py): a file the code
# wrote, or the session state. Nothing else a response names is ever taken.
FILE_REF = re.compile(r"out/[0-9]{1,3}")
SESSION_REF = "out/session"


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


def refer_inputs(request: ExecutionRequest, event: dict[str, object],
                 place: Callable[[str, str], str]) -> dict[str, object]:
    """The event, with each input held by reference replaced by the ref ``place(blob key, slot)``
    gives it once it has put the bytes where the sandbox takes them (slots "0", "1"... and
    "session"); inline inputs stay inline."""
    files: list[dict[str, str]] = []
    for index, item in enumerate(request.files):
        if item.key is None:
            files.append({"name": item.name, "content_b64": item.content_b64})
        else:
            files.append({"name": item.name, "ref": place(item.key, str(index))})
    if files:
        event["files"] = files
    if request.carry_session and request.session_key:
        event["session"] = {"state_ref": place(request.session_key, "session")}
    return event


class OverRoom(Exception):
    """An output larger than what the workspace may still store: not copied."""


# take(ref, room): the blob key and size once the bytes are held; None if the ref names nothing
# the runner left; OverRoom if the output, measured before a byte is copied, is over ``room``.
Take = Callable[[str, "int | None"], "tuple[str, int] | None"]


def adopt_outputs(result: ExecutionResult, prefix: str, take: Take, room: int | None = None) -> None:
    """Give each output the blob key and size ``take(ref, room left)`` returns once it holds the
    bytes, under ``prefix`` (the execution's own). An output without a ref the runner makes, that
    could not be taken, or that is over what the workspace may still store (``room``), is dropped
    with a note: with an exchange, nothing comes back inline."""
    result.exchange_prefix = prefix
    kept = []
    left = room
    for produced in result.files:
        try:
            taken = take(produced.ref, left) if produced.ref and FILE_REF.fullmatch(produced.ref) else None
        except OverRoom:
            result.notes.append(f"file {produced.name!r} was not kept: it is over what the workspace's storage "
                                f"quota has room for ({left} bytes)")
            continue
        if taken is None:
            result.notes.append(f"file {produced.name!r} could not be taken from the sandbox")
            continue
        (produced.key, produced.size), produced.content_b64 = taken, ""
        left = None if left is None else left - produced.size
        kept.append(produced)
    result.files = kept
    session = result.session
    if session is not None:
        try:
            taken = take(session.ref, left) if session.ref == SESSION_REF else None
        except OverRoom:
            result.session = None
            result.notes.append("the session state was not kept: it is over what the workspace's storage quota "
                                f"has room for ({left} bytes)")
            return
        if taken is None:
            result.session = None
            result.notes.append("the session state could not be taken from the sandbox; it was not kept")
        else:
            (session.key, session.bytes), session.state_b64 = taken, ""
