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
import types
from typing import Any, BinaryIO

IN_FILE = ".session-in"
OUT_FILE = ".session-out"
VERSION = 1
SKIP = {"__builtins__", "__name__", "__doc__", "__loader__", "__spec__", "__package__"}


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]


def restore(handle: BinaryIO, namespace: dict[str, Any], workdir: str) -> tuple[list[str], list[list[Any]]]:
    """Load a previous state from ``handle`` into ``namespace`` and ``workdir``; return notes and
    restored files. Read as a stream, and each pickled value is dropped once loaded: a 256 MiB
    state costs its values plus one of them in flight, not the whole blob on top, and nothing
    user code can reach afterwards holds the raw bytes."""
    notes: list[str] = []
    try:
        state = pickle.load(handle)  # noqa: S301 - inside the sandbox, on state this conversation's code produced
    except Exception as exc:  # noqa: BLE001
        return [f"session state could not be loaded ({_reason(exc)}); starting fresh"], []
    for name, module in state.get("modules", {}).items():
        try:
            namespace[name] = importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001
            notes.append(f"session: could not re-import {name} ({module}): {_reason(exc)}")
    values = state.pop("values", {})
    for name in list(values):
        data = values.pop(name)
        try:
            namespace[name] = pickle.loads(data)  # noqa: S301 - same: sandbox-side, own state
        except Exception as exc:  # noqa: BLE001
            notes.append(f"session: could not restore {name}: {_reason(exc)}")
        del data
    restored = []
    files = state.pop("files", {})
    for relative in list(files):
        data = files.pop(relative)
        path = os.path.join(workdir, relative)
        if os.path.lexists(path):
            continue  # a file handed in with this request is newer than the session's copy
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "xb") as out:
                out.write(data)
            info = os.stat(path)
            restored.append([relative, info.st_size, info.st_mtime_ns])
        except OSError as exc:
            notes.append(f"session: could not restore file {relative}: {_reason(exc)}")
        del data
    return notes, restored


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


def _read_files(workdir: str, names: list[str]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for relative in names:
        try:
            with open(os.path.join(workdir, relative), "rb") as handle:
                found[relative] = handle.read()
        except OSError:
            continue
    return found


def capture(namespace: dict[str, Any], workdir: str, limit: int, out_path: str,
            skip_files: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    """Serialise what can be carried, within ``limit`` bytes, into a new file at ``out_path``;
    say what was dropped and why. ``skip_files``: the conversation's own input files, unchanged:
    handed in again every turn, they are not state. The state is written as it is pickled, not
    built in memory first: with a 256 MiB state that is one copy of it fewer."""
    import cloudpickle

    modules: dict[str, str] = {}
    values: dict[str, bytes] = {}
    dropped: list[str] = []
    for name, value in list(namespace.items()):
        if name in SKIP or name.startswith("_"):
            continue
        if isinstance(value, types.ModuleType):
            modules[name] = value.__name__
            continue
        try:
            values[name] = cloudpickle.dumps(value)
        except Exception as exc:  # noqa: BLE001 - sockets, generators, locks...
            dropped.append(f"{name} ({type(value).__name__}: {_reason(exc)})")
    # Files are sized before any is read: only those that fit are ever held in memory (the code
    # may have written a GiB of outputs, which travel as files, not as state).
    sizes = _file_sizes(workdir, set(skip_files))
    items = [("value", name, len(data)) for name, data in values.items()]
    items += [("file", name, size) for name, size in sizes.items()]
    total = sum(size for *_, size in items)
    # Over the limit: drop the largest items first, and say so.
    for kind, name, size in sorted(items, key=lambda item: -item[2]):
        if total <= limit:
            break
        (values if kind == "value" else sizes).pop(name)
        total -= size
        dropped.append(f"{name} ({kind}, {size} bytes: over the {limit}-byte session limit)")
    files = _read_files(workdir, list(sizes))
    notes = ["session: not carried to the next execution: " + ", ".join(dropped)] if dropped else []
    with open(out_path, "xb") as handle:
        pickle.dump({"version": VERSION, "modules": modules, "values": values, "files": files}, handle,
                    protocol=pickle.HIGHEST_PROTOCOL)
    return notes
