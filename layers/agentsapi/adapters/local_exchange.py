"""The API side of a local worker's exchange directory: data by reference, not through the pipe.

Each worker's ``/tmp`` is a host directory (a tmpfs of its own when we are root). Its runner
keeps ``/tmp/xchg`` as the exchange root (sandbox_runner/exchange.py). For one execution we
write the input files and the session state into ``xchg/<id>/`` (streamed from the blob store,
never whole in memory), the runner takes them with a rename before the child starts, and after
the run it renames what the code wrote into ``xchg/<id>/out/``, from where we stream it into the
blob store under ``sandbox/<id>/``. The worker is ours alone meanwhile: no user code runs while
we read or write, and the runner empties the exchange root after every execution.

The directory is writable by the sandbox uid, so everything here goes through directory
descriptors opened without following links: a link a cell planted can never make this process
(root, possibly) read or write anywhere else on the host.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import uuid
from collections.abc import Iterable, Iterator

from ..blobs import BlobStore, exchange_key
from ..sandbox.exchange import InputMissing, OverRoom, adopt_outputs, check_inputs_size, refer_inputs
from ..sandbox.port import ExecutionRequest, ExecutionResult

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
CHUNK = 1 << 20


class HostExchange:
    """One execution's exchange, on the host side. Use ``send``, run, ``receive``, then ``close``."""

    def __init__(self, root: str, blobs: BlobStore, owner: int | None, max_input_bytes: int) -> None:
        self.root, self.blobs, self.owner, self.max_input_bytes = root, blobs, owner, max_input_bytes
        self.id = uuid.uuid4().hex
        self._root_fd: int | None = None

    def send(self, request: ExecutionRequest, event: dict[str, object]) -> dict[str, object]:
        """Write the request's inputs held by reference into the exchange; returns the event with
        refs in their place (inline inputs stay inline)."""
        check_inputs_size(request, self.max_input_bytes)
        self._root_fd = os.open(self.root, _DIR)
        os.mkdir(self.id, 0o700, dir_fd=self._root_fd)
        folder = os.open(self.id, _DIR, dir_fd=self._root_fd)
        try:
            self._own(folder)
            refer_inputs(request, event, lambda key, slot: self._write(folder, f"in-{slot}", key))
        finally:
            os.close(folder)
        event["exchange"] = {"dir": self.id}
        return event

    def receive(self, result: ExecutionResult, room: int | None = None) -> None:
        """Stream what the sandbox handed over into the blob store, under ``sandbox/<id>/``; each
        output gets its key and the size really taken. Outputs are measured before a byte is
        copied: none goes beyond what the workspace may still store (``room``). If the copying
        fails (the store's disk reserve, say), nothing of it stays in the store."""
        try:
            adopt_outputs(result, exchange_key(self.id, ""), self._take, room)
        except BaseException:
            self.blobs.delete_prefix(exchange_key(self.id, ""))
            raise

    def close(self) -> bool:
        """Remove this execution's directory; False if something stayed (the worker is then replaced)."""
        if self._root_fd is None:
            return True
        try:
            shutil.rmtree(self.id, dir_fd=self._root_fd)
        except FileNotFoundError:
            pass
        except OSError:
            return False
        finally:
            os.close(self._root_fd)
            self._root_fd = None
        return True

    # -- helpers ----------------------------------------------------------------------------
    def _own(self, fd: int) -> None:
        """Root writes for the sandbox uid: the files must be its own (code may append to an input)."""
        if self.owner is not None:
            os.fchown(fd, self.owner, self.owner)

    def _write(self, folder: int, name: str, key: str) -> str:
        """Stream the blob ``key`` into a new file ``name`` of the execution's directory; its ref."""
        chunks = self.blobs.stream(key)
        if chunks is None:
            raise InputMissing(f"{key} is no longer stored")
        fd = os.open(name, _NEW, 0o600, dir_fd=folder)
        try:
            self._own(fd)
            with os.fdopen(os.dup(fd), "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
        finally:
            os.close(fd)
            with contextlib.suppress(AttributeError, OSError):
                chunks.close()  # type: ignore[union-attr]
        return name

    def _take(self, ref: str, room: int | None = None) -> tuple[str, int] | None:
        """Stream ``<id>/<ref>`` (a ref adopt_outputs checked) into the blob store; its key and
        size, or None if it is not a regular file the runner left there. OverRoom, before any
        copy, if it is larger than ``room``; the copy stops at the size measured."""
        if self._root_fd is None:
            return None
        folder_name, _, name = ref.partition("/")
        try:
            top = os.open(self.id, _DIR, dir_fd=self._root_fd)
            try:
                folder = os.open(folder_name, _DIR, dir_fd=top)
            finally:
                os.close(top)
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
            finally:
                os.close(folder)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                return None
            if room is not None and info.st_size > room:
                raise OverRoom(ref)
            key = exchange_key(self.id, ref)
            _store(self.blobs, key, _chunks(handle, info.st_size))
            return key, info.st_size


def _chunks(handle: object, limit: int) -> Iterator[bytes]:
    """At most ``limit`` bytes: the size measured before copying is the most that is copied."""
    while limit > 0 and (chunk := handle.read(min(CHUNK, limit))):  # type: ignore[attr-defined]
        limit -= len(chunk)
        yield chunk


def _store(blobs: BlobStore, key: str, chunks: Iterable[bytes]) -> None:
    """Chunks into the blob store: streamed where the store takes a stream (the file system)."""
    put_stream = getattr(blobs, "put_stream", None)
    if put_stream is not None:
        put_stream(key, chunks)
    else:
        blobs.put(key, b"".join(chunks))
