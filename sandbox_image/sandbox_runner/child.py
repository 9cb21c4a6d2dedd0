"""The forked child: lock itself down, then run the user's cell. Never returns.

Order matters. Before the request (``prepare``, in the spare): own session, seccomp filter,
fresh random seeds. After it (``run``): fds (so nothing of the zygote stays reachable), the
environment, working directory and rlimits, and only then user code.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import resource
import stat
import sys
import time
from typing import Any

from . import cell, frames, seccomp, session, warmup

REQUEST_FILE = ".request.json"  # written by the runner, O_EXCL, in the execution's control dir
RAW_FD = 1  # stdout and stderr of subprocesses and C code
CHANNEL_FD = 3  # framed Python-level output and the result


class FrameStream(io.TextIOBase):
    """sys.stdout/sys.stderr replacement writing framed, unbuffered text to the channel."""

    def __init__(self, kind: bytes, name: str) -> None:
        self._kind = kind
        self._name = name

    @property
    def name(self) -> str:  # some libraries look at sys.stdout.name
        return self._name

    @property
    def encoding(self) -> str:
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        # Code that asks for a real fd (faulthandler, subprocess) gets the raw pipe.
        return RAW_FD

    def write(self, text: str) -> int:
        data = text.encode("utf-8", "replace")
        for start in range(0, len(data), frames.MAX_TEXT_FRAME):
            _write_all(CHANNEL_FD, frames.encode(self._kind, data[start : start + frames.MAX_TEXT_FRAME]))
        return len(text)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except OSError:
            return  # the runner stopped listening (cap hit or deadline): nothing more to say
        view = view[written:]


def _redirect_fds(raw_w: int, chan_w: int) -> None:
    # Move the channel out of the way first, then make 0/1/2 what we want.
    chan = os.dup(chan_w)
    raw = os.dup(raw_w)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(raw, 1)
    os.dup2(raw, 2)
    os.dup2(chan, CHANNEL_FD)  # this also closes the zygote's control socket, which was fd 3
    _close_channels(CHANNEL_FD + 1)


def _close_channels(first: int) -> None:
    """Close every inherited socket, pipe and device above ``first``.

    Regular files and directories stay open: libraries preloaded in the zygote keep some open
    (matplotlib's fonts, read by FreeType on demand), and closing them breaks the child. They
    are read-only files of the image; every way out of the process (sockets, pipes) goes.
    """
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd < first:
            continue
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            continue  # the listing's own fd, already closed
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            with contextlib.suppress(OSError):
                os.close(fd)


def _set_limits(limits: dict[str, int]) -> None:
    cpu = limits["cpu_s"]
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU first, SIGKILL a second later
    resource.setrlimit(resource.RLIMIT_AS, (limits["address_space_bytes"],) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_size_bytes"],) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"],) * 2)
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"],) * 2)


def _reseed() -> None:
    # Every child is a copy of the zygote: without this, all executions draw the same "random" numbers.
    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def prepare(seccomp_ok: bool, protected: set[int], groups: set[int]) -> None:
    """Everything that does not depend on the request, done while the spare waits for one.

    ``protected``/``groups``: the processes (and their groups) that outlive the execution; the
    filter refuses signals, rlimits, priority and affinity calls aimed at them.
    """
    os.setsid()  # own session and process group: the runner kills the group as one
    if seccomp_ok:
        seccomp.install(protected, groups)
    _reseed()


def warm(loaded: list[str]) -> None:
    """Run a typical data cell now, so its copy-on-write faults are off the request's path."""
    warmup.run(loaded)
    _reseed()


def _unchanged_inputs(inputs: dict[str, list[int]]) -> set[str]:
    """Input files the cell left as they were handed in (same size and modification time)."""
    unchanged = set()
    for name, (size, mtime_ns) in inputs.items():
        try:
            info = os.stat(name, follow_symlinks=False)
        except OSError:
            continue
        if (info.st_size, info.st_mtime_ns) == (size, mtime_ns):
            unchanged.add(name)
    return unchanged


def control_dir(workdir: str) -> str:
    """Where the runner's own files of an execution live (the request, the session state in and
    out): beside the user's directory, never in it, so no file the user names can collide with them."""
    return workdir.rstrip("/") + ".ctl"


def _take_request(workdir: str) -> dict[str, Any]:
    """The runner's request file (code, env, limits), read and removed before user code runs."""
    path = os.path.join(control_dir(workdir), REQUEST_FILE)
    with open(path, "rb") as handle:
        request = json.loads(handle.read())
    os.unlink(path)
    return request


def _restore_session(namespace: dict[str, Any], workdir: str) -> tuple[list[str], list[list[Any]]]:
    """Load the state the runner left, streamed from its file, which is gone before user code runs
    (session.restore drops each raw value once loaded)."""
    path = os.path.join(control_dir(workdir), session.IN_FILE)
    with open(path, "rb") as handle:
        os.unlink(path)
        return session.restore(handle, namespace, workdir)


def run(request: dict[str, Any], raw_w: int, chan_w: int) -> None:
    """Run after ``prepare``: wire the fds, set the environment and limits, run the cell, exit."""
    status = 70
    received = time.perf_counter()
    try:
        _redirect_fds(raw_w, chan_w)
        request = {**request, **_take_request(request["workdir"])}
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["workdir"])
        _set_limits(request["limits"])
        sys.stdout = FrameStream(frames.STDOUT, "<stdout>")
        sys.stderr = FrameStream(frames.STDERR, "<stderr>")
        sys.argv = [""]
        namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
        session_notes: list[str] = []
        restored: list[list[Any]] = []
        carry = request.get("session")
        if carry is not None and os.path.exists(os.path.join(control_dir(request["workdir"]), session.IN_FILE)):
            session_notes, restored = _restore_session(namespace, request["workdir"])
        began = time.perf_counter()
        outcome = cell.run_cell(request["code"], namespace)
        ran = time.perf_counter()
        try:
            outcome.figures = cell.save_figures(request["workdir"])
        except Exception as exc:  # noqa: BLE001 - a broken figure must not lose the rest
            sys.stderr.write(f"[could not save figures: {type(exc).__name__}: {exc}]\n")
        if carry is not None:
            try:
                session_notes += session.capture(namespace, request["workdir"], carry["limit"],
                                                 os.path.join(control_dir(request["workdir"]), session.OUT_FILE),
                                                 skip_files=_unchanged_inputs(request.get("inputs") or {}))
            except Exception as exc:  # noqa: BLE001 - the cell's own result still counts
                session_notes.append(f"session state could not be saved: {type(exc).__name__}: {exc}")
        result = {
            "display": outcome.display,
            "table": outcome.table,
            "error": outcome.error,
            "memory_error": outcome.memory_error,
            "figures": outcome.figures,
            "session_notes": session_notes,
            "restored_files": restored,
            "timings_ms": {"setup": round((began - received) * 1000, 2), "cell": round((ran - began) * 1000, 2),
                           "figures": round((time.perf_counter() - ran) * 1000, 2)},
        }
        _write_all(CHANNEL_FD, frames.encode(frames.RESULT, json.dumps(result).encode()))
        status = 1 if outcome.error else 0
    except BaseException:  # noqa: BLE001 - never unwind into the zygote's code
        status = 71
    finally:
        os._exit(status)
