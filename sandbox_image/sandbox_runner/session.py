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
    """A write-only view of the state file that refuses to grow it past the limit: a value over
    the limit stops being pickled as soon as it crosses it, not after all of it is written."""

    def __init__(self, handle: BinaryIO, limit: int) -> None:
        self.handle, self.limit = handle, limit

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        if self.handle.tell() + size > self.limit:
            raise _OverLimit
        return self.handle.write(data)

    def rewind(self, offset: int) -> None:
        """Forget what was written from ``offset`` on (a value or file that did not fit)."""
        self.handle.seek(offset)
        self.handle.truncate()


def _estimate(value: Any) -> int:
    """A cheap guess of a value's size, only to write the small ones first: when the state is over
    the limit, what is dropped is then the largest. The bounded writing is what decides."""
    try:
        if type(value).__module__.startswith("pandas") and hasattr(value, "memory_usage"):
            usage = value.memory_usage(deep=False)  # deep=True would read every string
            return int(usage.sum() if hasattr(usage, "sum") else usage)
        nbytes = getattr(value, "nbytes", None)  # numpy arrays, memoryviews
        return nbytes if isinstance(nbytes, int) else sys.getsizeof(value)
    except Exception:  # noqa: BLE001 - a guess
        return 0


def capture(namespace: dict[str, Any], workdir: str, limit: int, out_path: str,
            skip_files: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    """Write what can be carried, within ``limit`` bytes, into a new file at ``out_path``; say what
    was dropped and why. ``skip_files``: the conversation's own input files, unchanged: handed in
    again every turn, they are not state.

    Each value is pickled straight into the file, and each file copied in, smallest first: nothing
    is held in memory twice, and when the state is over the limit the largest items are the ones
    dropped, each as soon as it crosses the limit. The index of what was kept ends the file."""
    import cloudpickle

    modules: dict[str, str] = {}
    values: dict[str, Any] = {}  # held here: a thread the cell left running may still change the namespace
    dropped: list[str] = []
    for name, value in list(namespace.items()):
        if name in SKIP or name.startswith("_"):
            continue
        if isinstance(value, types.ModuleType):
            modules[name] = value.__name__
        else:
            values[name] = value
    items = [(_estimate(value), "value", name) for name, value in values.items()]  # (estimated size, kind, name)
    items += [(size, "file", name) for name, size in _file_sizes(workdir, set(skip_files)).items()]
    entries: list[tuple[str, str, int, int]] = []
    with open(out_path, "xb") as handle:
        bounded = _Bounded(handle, limit)
        for _, kind, name in sorted(items, key=lambda item: item[0]):
            start = handle.tell()
            try:
                if kind == "value":
                    cloudpickle.dump(values[name], bounded, protocol=pickle.HIGHEST_PROTOCOL)
                else:
                    with open(os.path.join(workdir, name), "rb") as source:
                        shutil.copyfileobj(source, bounded, CHUNK)
            except _OverLimit:
                bounded.rewind(start)
                dropped.append(f"{name} ({kind}: over the {limit}-byte session limit)")
                continue
            except OSError:
                bounded.rewind(start)  # a file removed or unreadable since it was listed
                continue
            except Exception as exc:  # noqa: BLE001 - sockets, generators, locks...
                bounded.rewind(start)
                dropped.append(f"{name} ({type(values[name]).__name__}: {_reason(exc)})")
                continue
            entries.append((kind, name, start, handle.tell() - start))
        index_at = handle.tell()
        pickle.dump({"version": VERSION, "modules": modules, "entries": entries}, handle,
                    protocol=pickle.HIGHEST_PROTOCOL)
        handle.write(TRAILER.pack(index_at, MAGIC))
    return ["session: not carried to the next execution: " + ", ".join(dropped)] if dropped else []
