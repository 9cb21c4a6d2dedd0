"""Interpreter sessions: what one execution leaves for the next, carried in the request and response.

Runs inside the child only. The sandbox stays stateless: the state is an opaque blob the API
side stores and hands back (by reference when large); the runner never opens it. It holds the cell namespace (values
serialised with cloudpickle, so functions and classes defined in a cell survive; imported
modules by name) and the regular files of the working directory. What cannot be carried (an
open socket, a generator, anything over the size limit) is dropped with a plain note.
"""

from __future__ import annotations

import importlib
import os
import pickle
import shutil
import stat
import struct
import sys
import types
from collections.abc import Callable
from typing import Any, BinaryIO

IN_FILE = ".session-in"
OUT_FILE = ".session-out"
# Version 2: each value's pickle and each file's bytes one after another, then an index of them
# (kind, name, offset, length), then TRAILER: the index's offset and MAGIC.
VERSION = 2
MAGIC = b"AGSESS02"
TRAILER = struct.Struct(">Q8s")
CHUNK = 1 << 20
SKIP = {"__builtins__", "__name__", "__doc__", "__loader__", "__spec__", "__package__"}


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]


def restore(handle: BinaryIO, namespace: dict[str, Any], workdir: str) -> tuple[list[str], list[list[Any]]]:
    """Load a previous state from ``handle`` (a seekable file) into ``namespace`` and ``workdir``;
    return notes and restored files. Each value is unpickled straight from the file and each file
    copied out in chunks: a 256 MiB state costs its values, not its bytes on top. A state written
    before version 2 (one pickle holding every value's bytes) still loads."""
    try:
        index = _read_index(handle)
        if index is None:
            handle.seek(0)
            return _restore_v1(pickle.load(handle), namespace, workdir)  # noqa: S301 - see below
    except Exception as exc:  # noqa: BLE001
        return [f"session state could not be loaded ({_reason(exc)}); starting fresh"], []
    notes = _import_modules(index.get("modules", {}), namespace)
    restored: list[list[Any]] = []
    for kind, name, offset, length in index.get("entries", []):
        handle.seek(offset)
        if kind == "value":
            try:
                # Inside the sandbox, on state this conversation's own code produced.
                namespace[name] = pickle.load(handle)  # noqa: S301
            except Exception as exc:  # noqa: BLE001
                notes.append(f"session: could not restore {name}: {_reason(exc)}")
        else:
            _restore_file(workdir, name, lambda out, n=length: _copy(handle, out, n), notes, restored)
    return notes, restored


def _read_index(handle: BinaryIO) -> dict[str, Any] | None:
    """The index a version-2 state ends with (its offset, then MAGIC), or None for version 1."""
    end = handle.seek(0, os.SEEK_END)
    if end < TRAILER.size:
        return None
    handle.seek(end - TRAILER.size)
    index_at, magic = TRAILER.unpack(handle.read(TRAILER.size))
    if magic != MAGIC:
        return None
    handle.seek(index_at)
    index = pickle.load(handle)  # noqa: S301 - sandbox-side, own state
    if index.get("version") != VERSION:
        raise ValueError(f"unknown session version {index.get('version')!r}")
    return index


def _restore_v1(state: dict[str, Any], namespace: dict[str, Any], workdir: str) -> tuple[list[str], list[list[Any]]]:
    """A state from before version 2: every value's pickled bytes and every file's in one dict."""
    notes = _import_modules(state.get("modules", {}), namespace)
    values = state.pop("values", {})
    for name in list(values):
        data = values.pop(name)
        try:
            namespace[name] = pickle.loads(data)  # noqa: S301 - sandbox-side, own state
        except Exception as exc:  # noqa: BLE001
            notes.append(f"session: could not restore {name}: {_reason(exc)}")
        del data
    restored: list[list[Any]] = []
    files = state.pop("files", {})
    for relative in list(files):
        data = files.pop(relative)
        _restore_file(workdir, relative, lambda out, d=data: out.write(d), notes, restored)
        del data
    return notes, restored


def _import_modules(modules: dict[str, str], namespace: dict[str, Any]) -> list[str]:
    notes = []
    for name, module in modules.items():
        try:
            namespace[name] = importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001
            notes.append(f"session: could not re-import {name} ({module}): {_reason(exc)}")
    return notes


def _restore_file(workdir: str, relative: str, write: Callable[[BinaryIO], object], notes: list[str],
                  restored: list[list[Any]]) -> None:
    path = os.path.join(workdir, relative)
    if os.path.lexists(path):
        return  # a file handed in with this request is newer than the session's copy
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "xb") as out:
            write(out)
        info = os.stat(path)
        restored.append([relative, info.st_size, info.st_mtime_ns])
    except OSError as exc:
        notes.append(f"session: could not restore file {relative}: {_reason(exc)}")


def _copy(source: BinaryIO, target: BinaryIO, length: int) -> None:
    while length > 0:
        chunk = source.read(min(length, CHUNK))
        if not chunk:
            raise OSError("the session state ends early")
        target.write(chunk)
        length -= len(chunk)


def _file_sizes(workdir: str, skip: set[str]) -> dict[str, int]:
    """The regular files of the working directory and their sizes, nothing read yet."""
    found: dict[str, int] = {}
    for directory, dirs, names in os.walk(workdir, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
        for name in names:
            path = os.path.join(directory, name)
            if name.startswith(".") or os.path.islink(path) or not os.path.isfile(path):
                continue
            relative = os.path.relpath(path, workdir)
            if relative in skip:
                continue  # an unchanged input: handed in again every turn
            try:
                found[relative] = os.stat(path, follow_symlinks=False).st_size
            except OSError:
                continue
    return found


class _OverLimit(Exception):
    pass


class _Bounded:
    """A write-only view of the state file that refuses to grow it past ``limit`` less what the
    index will take: a value over the limit stops being pickled as soon as it crosses it, not
    after all of it is written."""

    def __init__(self, handle: BinaryIO, limit: int) -> None:
        self.handle, self.limit, self.reserved = handle, limit, 0

    def room(self) -> int:
        return self.limit - self.reserved - self.handle.tell()

    def write(self, data: Any) -> int:
        if memoryview(data).nbytes > self.room():
            raise _OverLimit
        return self.handle.write(data)

    def rewind(self, offset: int) -> None:
        """Forget what was written from ``offset`` on (a value or file that did not fit)."""
        self.handle.seek(offset)
        self.handle.truncate()


def _index_cost(name: str) -> int:
    """At least what the index takes to name one entry (kind, name, offset, length; a name may be
    any string, 4 bytes a character at most in UTF-8): kept within the limit, so the whole file
    is too, plus a constant."""
    return 64 + 4 * len(name)


ESTIMATE_WALK = 10_000  # objects visited per value, at most, to estimate its size


def _estimate(value: Any) -> tuple[int, bool]:
    """A cheap estimate of a value's pickled size, and whether it is a lower bound (bytes-like
    values, arrays of plain numbers: their pickle holds at least their bytes). It orders the
    writing, smallest first, so that when the state is over the limit what is dropped is the
    largest; containers are walked (up to ESTIMATE_WALK objects), so a dict holding a large array
    counts as large. A guess otherwise: the bounded writing is what decides."""
    try:
        hint = _size_hint(value)
        if hint is not None:
            return hint
        total, seen, stack = 0, set(), [value]
        while stack and len(seen) < ESTIMATE_WALK:
            item = stack.pop()
            if id(item) in seen:
                continue
            seen.add(id(item))
            hint = _size_hint(item)
            if hint is not None:
                total += hint[0]
                continue
            total += sys.getsizeof(item)
            if isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, list | tuple | set | frozenset):
                stack.extend(item)
            elif isinstance(getattr(item, "__dict__", None), dict):
                stack.append(item.__dict__)
        return total, False
    except Exception:  # noqa: BLE001 - an object that refuses to be sized is guessed small
        return 0, False


def _size_hint(value: Any) -> tuple[int, bool] | None:
    """A value's size when known without walking it, and whether its pickle holds at least that."""
    if isinstance(value, bytes | bytearray | memoryview):
        return memoryview(value).nbytes, True
    module = type(value).__module__
    if module.startswith("pandas") and hasattr(value, "memory_usage"):
        usage = value.memory_usage(deep=False)  # deep=True would read every string; pointers only
        return int(usage.sum() if hasattr(usage, "sum") else usage), False
    if module == "numpy" and isinstance(getattr(value, "nbytes", None), int):
        # An object array's nbytes counts pointers, which its pickle need not hold.
        return value.nbytes, not getattr(getattr(value, "dtype", None), "hasobject", True)
    return None


def _open_regular(path: str) -> BinaryIO | None:
    """A working-directory file opened for reading only if it is still a regular file: a FIFO or a
    link put in its place after it was listed would block or lead elsewhere."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return os.fdopen(fd, "rb")


class _State:
    """The state file being written: each item appended whole or not at all."""

    def __init__(self, handle: BinaryIO, limit: int) -> None:
        self.handle, self.limit = handle, limit
        self.bounded = _Bounded(handle, limit)
        self.entries: list[tuple[str, str, int, int]] = []
        self.dropped: list[str] = []

    def add(self, kind: str, name: str, write: Callable[[Any], object], known_size: int | None, label: str) -> None:
        """Append one item via ``write(bounded)``; over the limit (known before, or found while
        writing) it is dropped with a note, and any other failure is the item's alone (``label``
        names what it was: a value's type)."""
        start = self.handle.tell()
        self.bounded.reserved += _index_cost(name)
        if known_size is not None and known_size > self.bounded.room():
            self._drop(name, f"{kind}: over the {self.limit}-byte session limit")
            return
        try:
            if write(self.bounded) is False:
                self.bounded.rewind(start)
                self.bounded.reserved -= _index_cost(name)  # not an entry: nothing to say
                return
        except _OverLimit:
            self.bounded.rewind(start)
            self._drop(name, f"{kind}: over the {self.limit}-byte session limit")
            return
        except Exception as exc:  # noqa: BLE001 - sockets, generators, locks, a failing read...
            self.bounded.rewind(start)
            self._drop(name, f"{label}: {_reason(exc)}")
            return
        self.entries.append((kind, name, start, self.handle.tell() - start))

    def _drop(self, name: str, why: str) -> None:
        self.bounded.reserved -= _index_cost(name)
        self.dropped.append(f"{name} ({why})")


MAX_NAMED_DROPS = 20  # the note names this many dropped items, then counts the rest


def capture(namespace: dict[str, Any], workdir: str, limit: int, out_path: str,
            skip_files: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    """Write what can be carried, within ``limit`` bytes, into a new file at ``out_path``; say what
    was dropped and why. ``skip_files``: the conversation's own input files, unchanged: handed in
    again every turn, they are not state.

    Each value is pickled straight into the file, and each file copied in, smallest first by an
    estimate: nothing is held in memory twice, and when the state is over the limit the largest
    items are the ones dropped, each as soon as it crosses the limit. The index of what was kept
    ends the file. The file is written under a temporary name and renamed into place only once
    complete: an execution that ends mid-way (its deadline, a hang in a value's pickling) leaves
    no state at all, so the conversation keeps the one before, rather than a broken one that
    would lose everything."""
    import cloudpickle

    modules: dict[str, str] = {}
    values: dict[str, Any] = {}  # held here: a thread the cell left running may still change the namespace
    for name, value in list(namespace.items()):
        if name in SKIP or name.startswith("_"):
            continue
        if isinstance(value, types.ModuleType):
            modules[name] = value.__name__
        else:
            values[name] = value
    items: list[tuple[int, str, str, int | None]] = []  # (estimate, kind, name, size known to be at least)
    for name, value in values.items():
        estimate, exact = _estimate(value)
        items.append((estimate, "value", name, estimate if exact else None))
    items += [(size, "file", name, size) for name, size in _file_sizes(workdir, set(skip_files)).items()]

    def pickled(value: Any) -> Callable[[Any], object]:
        return lambda out: cloudpickle.dump(value, out, protocol=pickle.HIGHEST_PROTOCOL)

    def copied(relative: str) -> Callable[[Any], object]:
        def copy(out: Any) -> bool:
            source = _open_regular(os.path.join(workdir, relative))
            if source is None:
                return False  # gone, or no longer a regular file: not state
            with source:
                shutil.copyfileobj(source, out, CHUNK)
            return True
        return copy

    partial = f"{out_path}.{os.getpid()}.partial"
    with open(partial, "xb") as handle:
        try:
            state = _State(handle, limit)
            for _, kind, name, known in sorted(items, key=lambda item: item[0]):
                if kind == "value":
                    state.add(kind, name, pickled(values[name]), known, type(values[name]).__name__)
                else:
                    state.add(kind, name, copied(name), known, "file")
            index_at = handle.tell()
            pickle.dump({"version": VERSION, "modules": modules, "entries": state.entries}, handle,
                        protocol=pickle.HIGHEST_PROTOCOL)
            handle.write(TRAILER.pack(index_at, MAGIC))
        except BaseException:
            os.unlink(partial)
            raise
    os.replace(partial, out_path)
    dropped = state.dropped
    if len(dropped) > MAX_NAMED_DROPS:
        dropped = [*dropped[:MAX_NAMED_DROPS], f"and {len(dropped) - MAX_NAMED_DROPS} more"]
    return ["session: not carried to the next execution: " + ", ".join(dropped)] if dropped else []
