"""The trusted side of the sandbox: start the zygote, run one execution, leave nothing behind.

The runner never runs user code and never trusts what the child produced: output is read in
bounded chunks, the wall deadline is enforced whatever the child does with its pipes, the
whole process tree (and every other process of the sandbox uid) is killed afterwards, files are
collected without following links and the working directory is removed.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import mimetypes
import os
import selectors
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import exchange, frames, proc, scrub, session
from .child import REQUEST_FILE, control_dir
from .protocol import BadRequest, ExecutionRequest, SandboxConfig

PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
READ_CHUNK = 64 * 1024
MAX_RESULT_FRAME = 1024 * 1024
# Values that must never leave the sandbox even if some path we did not foresee exposes them.
SECRET_ENV_NAMES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")


class SandboxStartError(RuntimeError):
    """The zygote could not be started; no code can run."""


@dataclass
class _Output:
    """Ordered output of one execution, capped in bytes."""

    cap: int
    chunks: list[tuple[str, bytes]] = field(default_factory=list)
    size: int = 0
    over_cap: bool = False
    # Told of each piece as it is admitted (live output): see LiveLines.
    listener: Callable[[str, bytes], None] | None = None

    def add(self, stream: str, data: bytes) -> None:
        if self.over_cap or not data:
            return
        room = self.cap - self.size
        if len(data) > room:
            data = data[:room]
            self.over_cap = True
        self.size += len(data)
        if self.listener is not None:
            self.listener(stream, data)
        if self.chunks and self.chunks[-1][0] == stream:
            self.chunks[-1] = (stream, self.chunks[-1][1] + data)
        else:
            self.chunks.append((stream, data))

    def runs(self) -> list[dict[str, str]]:
        return [{"stream": s, "text": d.decode("utf-8", "replace")} for s, d in self.chunks]


class LiveLines:
    """Output as it is printed, for a caller that shows it live: whole lines only (a secret is
    never split between two pieces, so each is redacted as the final output is), per stream. A
    line after a quiet spell goes at once; a burst goes at most every INTERVAL_S, as one piece
    (a loop printing 30,000 lines is a few dozen pieces, not 30,000 events)."""

    INTERVAL_S = 0.05

    def __init__(self, emit: Callable[[str, str], None], redact: Callable[[str | None], str | None]) -> None:
        self.emit, self.redact = emit, redact
        self.pending: dict[str, bytes] = {}  # a line not yet ended, per stream
        self.held: list[tuple[str, bytes]] = []  # whole lines not yet emitted, in order
        self.last = float("-inf")

    def __call__(self, stream: str, data: bytes) -> None:
        buffered = self.pending.get(stream, b"") + data
        complete, newline, rest = buffered.rpartition(b"\n")
        self.pending[stream] = rest
        if newline:
            if self.held and self.held[-1][0] == stream:
                self.held[-1] = (stream, self.held[-1][1] + complete + newline)
            else:
                self.held.append((stream, complete + newline))
        self.flush_due()

    def flush_due(self) -> None:
        now = time.monotonic()
        if not self.held or now - self.last < self.INTERVAL_S:
            return
        held, self.held, self.last = self.held, [], now
        for stream, data in held:
            self.emit(stream, self.redact(data.decode("utf-8", "replace")) or "")


@dataclass
class _Exit:
    returncode: int | None = None
    signal: int | None = None
    max_rss_kb: int = 0


@dataclass
class _Execution:
    """One execution's own directory, its input files (name -> size, mtime) and notes for the user."""

    workdir: Path
    id: str
    inputs: dict[str, tuple[int, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Where inputs came from and outputs go when they travel by reference (None: inline, base64).
    exchange: exchange.Exchange | None = None
    # What the caller may still store (None: no quota): outputs and the state stay within it.
    room: int | None = None

    def within_room(self, limit: int) -> int:
        return limit if self.room is None else min(limit, self.room)

    @property
    def control(self) -> Path:
        """The runner's own files of this execution, beside the user's directory (child.control_dir)."""
        return Path(control_dir(str(self.workdir)))


@dataclass
class _Outcome:
    """What the child produced while it ran: output, its result frame, how it ended."""

    output: _Output
    reader: frames.FrameReader
    result: dict[str, Any] | None = None
    exit_info: _Exit | None = None
    pid: int | None = None
    timed_out: bool = False
    zygote_lost: bool = False

    def finished(self) -> bool:
        return self.exit_info is not None or self.result is not None or self.output.over_cap or self.reader.corrupt

    def feed(self, tag: str, data: bytes) -> None:
        if tag == "raw":
            self.output.add("stdout", data)
            return
        for kind, payload in self.reader.feed(data):
            if kind == frames.RESULT:
                self.result = _parse_result(payload)
            else:
                self.output.add("stdout" if kind == frames.STDOUT else "stderr", payload)


class Runner:
    """One per container (Lambda) or worker (local). Not thread-safe: one execution at a time."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.uid = os.getuid()
        if self.uid == 0:
            # The kill sweep targets every process of our uid, and root limits barely bind:
            # untrusted code only ever runs under an unprivileged uid (Lambda's sbx_user, or the
            # local worker's uid 65534 inside bubblewrap).
            raise SandboxStartError("refusing to run untrusted code as root; run the runner as an unprivileged user")
        self.non_dumpable = proc.make_non_dumpable()
        self.subreaper = proc.make_subreaper()
        self._zygote: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self.zygote_info: dict[str, Any] = {}
        self._zygote_vitals: proc.Vitals | None = None
        self._secrets = [os.environ[n] for n in SECRET_ENV_NAMES if len(os.environ.get(n, "")) >= 8]
        root = Path(config.work_root)
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        # The exchange directory (locally) is emptied after every execution but the outputs
        # it hands over, which the API side takes before the next execution starts.
        self._exchange_root = Path(config.exchange_dir) if config.exchange_dir else None
        if self._exchange_root is not None:
            exchange.ensure_directory(self._exchange_root, self.uid)
        ours = {root.name} | ({self._exchange_root.name} if self._exchange_root else set())
        # What the writable scratch directories hold before any user code ran (and their modes);
        # anything else found there after an execution was left by it and is removed. The work
        # root itself is removed and made anew after every execution.
        keep = ours if config.wipe_scratch_at_init else None
        self._scratch_baseline = {d: (keep if keep is not None else set(os.listdir(d))) - ours
                                  for d in config.scratch_dirs if os.path.isdir(d)}
        self._scratch_modes = {d: stat.S_IMODE(os.stat(d).st_mode) for d in self._scratch_baseline}
        if not self._wipe_scratch():
            raise SandboxStartError(f"the scratch directories {sorted(self._scratch_baseline)} could not be emptied")

    # -- zygote lifecycle -------------------------------------------------------------------
    def _base_env(self, home: str) -> dict[str, str]:
        """Built from scratch, never a copy of our environment minus some keys."""
        bin_dir = str(Path(sys.executable).parent)
        return {
            "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": home,
            "TMPDIR": home,
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONIOENCODING": "utf-8",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "MPLBACKEND": "Agg",
            # No /dev/shm (read-only locally, absent in Lambda): joblib (scikit-learn) would warn on
            # every import that it falls back to serial mode; say it up front instead.
            "JOBLIB_MULTIPROCESSING": "0",
            "MPLCONFIGDIR": self.config.mpl_config_dir or str(Path(self.config.work_root) / ".mpl"),
        }

    def start(self) -> dict[str, Any]:
        """Start the zygote (idempotent). Returns its hello message."""
        if self._zygote is not None and self._zygote_healthy():
            return self.zygote_info
        if self._zygote is not None:
            # Tampered with or dead: it goes, and so does its spare (no execution is running now).
            self._kill_zygote()
            proc.sweep(self.uid, keep=())
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = self._base_env(self.config.work_root)
        env["SANDBOX_PRELOAD"] = ",".join(self.config.preload)
        env["SANDBOX_WARM_SPARE"] = "1" if self.config.warm_spare else "0"
        bootstrap = (
            "import os, sys; sys.path.insert(0, sys.argv[1]); os.dup2(int(sys.argv[2]), 3); "
            "from sandbox_runner.zygote import main; main()"
        )
        self._zygote = subprocess.Popen(
            [sys.executable, "-I", "-c", bootstrap, PACKAGE_ROOT, str(child_sock.fileno())],
            env=env,
            cwd="/",  # the work root is removed and made anew after every execution
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            pass_fds=(child_sock.fileno(),),
            close_fds=True,
        )
        child_sock.close()
        self._sock = parent_sock
        hello = self._recv(timeout=120.0)
        if hello is None or hello.get("event") != "ready":
            self._kill_zygote()
            raise SandboxStartError("the sandbox interpreter did not start")
        if self.config.require_seccomp and not hello.get("seccomp"):
            self._kill_zygote()
            probe = ", ".join(f"{step} {outcome}" for step, outcome in (hello.get("seccomp_probe") or {}).items())
            raise SandboxStartError("the seccomp filter could not be installed, and SANDBOX_REQUIRE_SECCOMP is set: "
                                    f"no code runs without it (this environment answered: {probe or 'nothing'})")
        self.zygote_info = hello
        self._zygote_vitals = proc.vitals(self._zygote.pid)
        self._wipe_scratch()  # the zygote's start-up caches (fonts) are not for the first tenant to see
        return hello

    def heal(self) -> None:
        """Replace a zygote that died or was tampered with now, not when the next caller comes."""
        with contextlib.suppress(SandboxStartError):
            self.start()

    def _zygote_healthy(self) -> bool:
        if self._zygote is None or self._zygote.poll() is not None or self._zygote_vitals is None:
            return False
        return proc.healthy(proc.vitals(self._zygote.pid), self._zygote_vitals)

    def _kill_zygote(self) -> None:
        if self._zygote is not None:
            try:
                self._zygote.kill()
                self._zygote.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self._sock is not None:
            self._sock.close()
        self._zygote, self._sock, self.zygote_info, self._zygote_vitals = None, None, {}, None

    def close(self) -> None:
        self._kill_zygote()
        proc.sweep(self.uid, keep=())
        self._wipe_scratch()

    def isolation(self) -> dict[str, Any]:
        return {
            "seccomp": bool(self.zygote_info.get("seccomp")),
            # How PR_SET_NO_NEW_PRIVS, seccomp(2) and prctl(PR_SET_SECCOMP) each answered here.
            "seccomp_probe": dict(self.zygote_info.get("seccomp_probe") or {}),
            "require_seccomp": self.config.require_seccomp,
            "non_dumpable": self.non_dumpable,
            "subreaper": self.subreaper,
            "uid": self.uid,
        }

    def _recv(self, timeout: float) -> dict[str, Any] | None:
        assert self._sock is not None
        self._sock.settimeout(max(timeout, 0.001))
        try:
            data = self._sock.recv(1 << 16)
        except (TimeoutError, OSError):
            return None
        if not data:
            return None
        return json.loads(data)

    # -- one execution ----------------------------------------------------------------------
    def execute(self, request: ExecutionRequest, deadline_s: float | None = None,
                on_output: Callable[[str, str], None] | None = None) -> dict[str, Any]:
        """Run one cell: prepare its directory, run it under the deadline, kill everything it
        started, collect what it wrote, wipe every writable place. Raises SandboxTainted (with
        the response) when something could not be cleaned: the host must then be replaced.
        ``on_output(stream, text)`` is told of each whole line as it is printed (live output)."""
        try:
            return self._execute(request, deadline_s, on_output)
        except _ZygoteGoneBeforeStart:
            # The zygote died between its health check and this request (killed from outside):
            # no user code ran, so the execution is simply run again on a new one.
            return self._execute(request, deadline_s, on_output)

    def _execute(self, request: ExecutionRequest, deadline_s: float | None,
                 on_output: Callable[[str, str], None] | None = None) -> dict[str, Any]:
        entered = time.monotonic()
        self.start()  # (re)starts a zygote that is missing or was tampered with: not the caller's time
        started = time.monotonic()
        budget = request.timeout_s if deadline_s is None else max(0.1, min(request.timeout_s, deadline_s - (started - entered)))
        execution = self._prepare(request)
        marks = {"prepare": time.monotonic()}
        outcome: _Outcome | None = None
        try:
            outcome = self._run(execution, started + budget,
                                LiveLines(on_output, self._redact) if on_output is not None else None)
        finally:
            if outcome is None:  # the run itself failed: still, nothing of it may survive
                self._sweep()
                self._wipe_scratch()
        marks["run"] = time.monotonic()
        if outcome.zygote_lost and outcome.pid is None and outcome.result is None and not outcome.output.size:
            self._kill_zygote()
            self._sweep()
            self._wipe_scratch()
            raise _ZygoteGoneBeforeStart()
        clean = self._sweep()
        marks["sweep"] = time.monotonic()
        files, state = self._collect(execution, outcome.result, request.session)
        clean = self._wipe_scratch(keep_exchange=execution.exchange.keep() if execution.exchange else None) and clean
        marks["collect_and_wipe"] = time.monotonic()
        response = self._response(execution, outcome, files, state, budget, started, marks, clean)
        if not clean:
            raise SandboxTainted(response)
        return response

    def _prepare(self, request: ExecutionRequest) -> _Execution:
        """A fresh directory with the input files, the session state and the request file the
        child reads (the zygote only ever sees the execution id and this directory)."""
        workdir = Path(self.config.work_root) / f"run-{uuid.uuid4().hex}"
        workdir.mkdir(mode=0o700)
        Path(control_dir(str(workdir))).mkdir(mode=0o700)
        execution = _Execution(workdir=workdir, id=workdir.name, room=request.room_bytes)
        try:
            execution.exchange = exchange.from_request(request.exchange, self.config.exchange_dir, self.uid,
                                                       self.config.max_returned_files)
            execution.inputs = self._write_inputs(workdir, request, execution.exchange)
        except (OSError, exchange.TransferFailed, BadRequest) as exc:
            self._wipe_scratch()
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise BadRequest(f"the input files could not be written to the sandbox: {why}") from exc
        session_limit = execution.within_room(
            self.config.max_session_bytes if execution.exchange else self.config.max_inline_session_bytes)
        limits = {
            "cpu_s": max(1, int(request.timeout_s) + 1),
            "address_space_bytes": self.config.memory_mb * 1024 * 1024,
            "file_size_bytes": self.config.max_file_bytes,
            "open_files": self.config.open_files,
            "processes": proc.count_tasks_of_uid(self.uid) + self.config.processes,
        }
        child_request = {
            "code": request.code,
            "env": self._base_env(str(workdir)),
            "limits": limits,
            "session": {"limit": session_limit} if request.session else None,
            # The input files as written (size, mtime): handed in again every turn, so while
            # unchanged they are not session state (and never "not carried").
            "inputs": {name: list(stamp) for name, stamp in execution.inputs.items()},
        }
        _write_new(execution.control / REQUEST_FILE, json.dumps(child_request).encode())
        return execution

    def _run(self, execution: _Execution, deadline: float,
             listener: Callable[[str, bytes], None] | None = None) -> _Outcome:
        """Hand the execution to the zygote and read its output until the result, the exit, the
        output cap or the deadline, whichever comes first; then kill its process group."""
        raw_r, raw_w = os.pipe()
        chan_r, chan_w = os.pipe()
        assert self._sock is not None
        message = {"op": "run", "id": execution.id, "workdir": str(execution.workdir)}
        socket.send_fds(self._sock, [json.dumps(message).encode()], [raw_w, chan_w])
        os.close(raw_w)
        os.close(chan_w)
        outcome = _Outcome(output=_Output(cap=self.config.max_output_bytes, listener=listener),
                           reader=frames.FrameReader(max_frame=MAX_RESULT_FRAME))
        selector = selectors.DefaultSelector()
        for fd, tag in ((raw_r, "raw"), (chan_r, "chan")):
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ, tag)
        selector.register(self._sock, selectors.EVENT_READ, "ctl")
        try:
            self._pump(execution.id, selector, outcome, deadline)
            # Kill first, then look at what is left in the pipes: the child may have spawned
            # helpers that keep them open forever, so we never wait for EOF.
            if outcome.pid is not None:
                _kill_group(outcome.pid)
            if outcome.exit_info is None and outcome.result is None and not outcome.zygote_lost:
                outcome.exit_info = self._await_exit(execution.id)
            for fd, tag in ((raw_r, "raw"), (chan_r, "chan")):
                for _ in range(64):
                    data = _read_some(fd)
                    if not data:
                        break
                    outcome.feed(tag, data)
        finally:
            selector.close()
            os.close(raw_r)
            os.close(chan_r)
        return outcome

    def _pump(self, execution_id: str, selector: selectors.BaseSelector, outcome: _Outcome, deadline: float) -> None:
        # The cell is over when its result arrives: the child only has os._exit() left to do,
        # and its memory teardown (milliseconds for a process holding pandas) need not be
        # waited for. The kill and the sweep make sure nothing runs on.
        live = outcome.output.listener if isinstance(outcome.output.listener, LiveLines) else None
        while not outcome.finished():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                outcome.timed_out = True
                return
            wait = min(remaining, LiveLines.INTERVAL_S) if live is not None and live.held else remaining
            if live is not None:
                live.flush_due()  # a burst's held lines go out even if the cell then goes quiet
            for key, _ in selector.select(timeout=wait):
                if key.data != "ctl":
                    data = _read_some(key.fd)
                    if data:
                        outcome.feed(key.data, data)
                    else:
                        selector.unregister(key.fd)
                    continue
                event = self._recv(timeout=1.0)
                if event is None:
                    outcome.zygote_lost = True
                    selector.unregister(key.fileobj)
                elif event.get("id") != execution_id:
                    pass  # a late report about an earlier execution, which we stopped waiting for
                elif event["event"] == "started":
                    outcome.pid = event["pid"]
                elif event["event"] == "exited":
                    outcome.exit_info = _Exit(event["returncode"], event["signal"], event.get("max_rss_kb", 0))
            if outcome.zygote_lost and not selector.get_map():
                return  # no zygote to report an exit, and both pipes are closed

    def _collect(self, execution: _Execution, result: dict[str, Any] | None,
                 carry_session: bool) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        # ``result`` was checked field by field when its frame was read (_parse_result).
        for name, size, mtime in (result or {}).get("restored_files", []):
            if name not in execution.inputs:
                execution.inputs[name] = (size, mtime)  # carried over from the session, not produced now
        if execution.exchange is not None:
            return self._export(execution, result, carry_session)
        files = self._collect_files(execution.workdir, execution.inputs, execution.notes, room=execution.room)
        state = _read_regular_file_at(execution.control / session.OUT_FILE,
                                      self.config.max_inline_session_bytes + 1024 * 1024) if carry_session else None
        execution.notes.extend((result or {}).get("session_notes", []))
        return files, ({"state_b64": base64.b64encode(state).decode("ascii"), "bytes": len(state)} if state else None)

    def _export(self, execution: _Execution, result: dict[str, Any] | None,
                carry_session: bool) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Outputs by reference: each file the code wrote, then the session state, handed over
        through the exchange (a rename locally, a PUT to a presigned URL in Lambda)."""
        assert execution.exchange is not None
        channel = execution.exchange
        execution.notes.extend((result or {}).get("session_notes", []))
        try:
            channel.begin_outputs()
            files = self._collect_files(execution.workdir, execution.inputs, execution.notes, channel, execution.room)
            state = None
            path = execution.control / session.OUT_FILE
            if carry_session and _is_regular(path):
                size = os.stat(path, follow_symlinks=False).st_size
                left = None if execution.room is None else execution.room - sum(f["size"] for f in files)
                if left is not None and size > left:
                    execution.notes.append(f"session: the state ({size} bytes) was not kept: the workspace's storage "
                                           f"quota has room for {max(0, left)} more bytes")
                elif size <= self.config.max_session_bytes + 1024 * 1024:
                    state = {"ref": channel.export(path, exchange.SESSION_SLOT), "bytes": size}
                else:
                    execution.notes.append("session: the state is over its limit and was not carried")
        except (OSError, exchange.TransferFailed) as exc:
            execution.notes.append(f"the outputs could not be handed over: {exc}")
            return [], None
        return files, state

    def _response(self, execution: _Execution, outcome: _Outcome, files: list[dict[str, Any]],
                  state: dict[str, Any] | None,
                  budget: float, started: float, marks: dict[str, float], clean: bool) -> dict[str, Any]:
        notes, result, exit_info = execution.notes, outcome.result, outcome.exit_info
        if outcome.zygote_lost:
            notes.append("the sandbox interpreter was killed during this execution; it has been restarted")
            self._kill_zygote()
        if not clean:
            notes.append("what this execution left behind could not all be removed; the sandbox was reset")
        truncated = outcome.output.over_cap or outcome.reader.corrupt
        status = _classify(outcome.timed_out, truncated, result, exit_info, notes, budget, self.config)
        response = {
            "status": status,
            "outputs": self._redact_runs(outcome.output.runs()),
            "display": self._redact((result or {}).get("display")),
            "table": self._redact_table((result or {}).get("table")),
            "error": self._redact_error((result or {}).get("error")),
            "exit_code": exit_info.returncode if exit_info else _exit_code_from(result),
            "signal": exit_info.signal if exit_info else None,
            "duration_ms": round((time.monotonic() - started) * 1000, 2),
            "phases_ms": {**_phases(started, marks), **_child_timings(result)},
            "max_rss_kb": exit_info.max_rss_kb if exit_info else 0,
            "files": files,
            "notes": notes,
            "isolation": self.isolation(),
            "session": state,
        }
        response["stdout"] = "".join(r["text"] for r in response["outputs"] if r["stream"] == "stdout")
        response["stderr"] = "".join(r["text"] for r in response["outputs"] if r["stream"] == "stderr")
        return response

    def _await_exit(self, execution_id: str) -> _Exit | None:
        wait_until = time.monotonic() + 5.0
        while time.monotonic() < wait_until:
            event = self._recv(timeout=wait_until - time.monotonic())
            if event is None:
                return None
            if event.get("id") != execution_id:
                continue
            if event.get("event") == "started":
                _kill_group(event["pid"])
            if event.get("event") == "exited":
                return _Exit(event["returncode"], event["signal"], event.get("max_rss_kb", 0))
        return None

    def _sweep(self) -> bool:
        """Kill every process of the uid but the zygote. (Whether the zygote itself was tampered
        with is checked by start(), before the next execution and, locally, right after this one.)"""
        keep = {self._zygote.pid} if self._zygote is not None else set()
        clean = proc.sweep(self.uid, keep=keep)
        proc.reap_children()
        if not clean:
            # Something outlived SIGKILL sweeps: restart everything, including the zygote.
            self._kill_zygote()
            return proc.sweep(self.uid, keep=())
        if self._sock is not None:
            try:
                self._sock.send(json.dumps({"op": "reap"}).encode())  # no answer: off the critical path
            except OSError:
                self._kill_zygote()
        return clean

    # -- files ------------------------------------------------------------------------------
    def _write_inputs(self, workdir: Path, request: ExecutionRequest,
                      channel: exchange.Exchange | None) -> dict[str, tuple[int, int]]:
        """The input files and the session state, inline or fetched through the exchange, within
        the per-execution input limit. Returns each file's (size, mtime) as written."""
        if channel is not None:
            channel.begin_inputs()
        room = self.config.max_input_bytes
        written: dict[str, tuple[int, int]] = {}
        for item in request.files:
            if item.ref is not None:
                assert channel is not None  # parse_request refuses refs without an exchange
                room -= channel.fetch(item.ref, workdir / item.name, room)
            else:
                room -= len(item.content)
                _write_new(workdir / item.name, item.content)
            if room < 0:
                raise BadRequest(f"the inputs are over the {self.config.max_input_bytes}-byte limit of one execution")
            info = os.stat(workdir / item.name, follow_symlinks=False)
            written[item.name] = (info.st_size, info.st_mtime_ns)
        if request.state_ref is not None:
            assert channel is not None
            channel.fetch(request.state_ref, Path(control_dir(str(workdir))) / session.IN_FILE,
                          min(room, self.config.max_session_bytes + (1 << 20)))
        elif request.state:
            _write_new(Path(control_dir(str(workdir))) / session.IN_FILE, request.state)
        if channel is not None:
            channel.end_inputs()
        return written

    def _collect_files(self, workdir: Path, inputs: dict[str, tuple[int, int]], notes: list[str],
                       channel: exchange.Exchange | None = None, room: int | None = None) -> list[dict[str, Any]]:
        """The files the code wrote or changed: read into the response (inline), or handed over
        through the exchange, one output slot each. Sizes are measured before anything is
        copied, and what is handed over stays within ``room`` (the caller's quota), so a file
        that is sparse here is never copied whole beyond what the caller may keep."""
        collected: list[dict[str, Any]] = []
        total = 0
        skipped: list[str] = []
        max_files = min(self.config.max_returned_files, channel.slots()) if channel else self.config.max_returned_files
        max_bytes = self.config.max_returned_bytes if channel else self.config.max_inline_returned_bytes
        quota_bound = room is not None and room < max_bytes
        max_bytes = min(max_bytes, room) if room is not None else max_bytes
        for relative, entry in _walk_no_follow(workdir, depth=3):
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode):
                skipped.append(f"{relative} (not a regular file)")
                continue
            if inputs.get(relative) == (info.st_size, info.st_mtime_ns):
                continue  # an input file the code did not change
            if len(collected) >= max_files or total + info.st_size > max_bytes:
                limit = "the workspace's storage quota" if quota_bound and len(collected) < max_files \
                    else "the returned-files limit"
                skipped.append(f"{relative} ({info.st_size} bytes, over {limit})")
                continue
            if channel is not None:
                total += info.st_size
                collected.append({"name": _utf8_name(relative, {f["name"] for f in collected}, notes),
                                  "mime_type": mimetypes.guess_type(relative)[0] or "application/octet-stream",
                                  "size": info.st_size, "ref": channel.export(Path(entry.path), str(len(collected)))})
                continue
            content = _read_regular_file(entry.path, info.st_size)
            if content is None:
                skipped.append(f"{relative} (unreadable)")
                continue
            total += len(content)
            collected.append(
                {
                    "name": _utf8_name(relative, {f["name"] for f in collected}, notes),
                    "mime_type": mimetypes.guess_type(relative)[0] or "application/octet-stream",
                    "size": len(content),
                    "content_b64": base64.b64encode(content).decode("ascii"),
                }
            )
        if skipped:
            notes.append("files not returned: " + ", ".join(skipped[:20]))
        return collected

    def _wipe_scratch(self, keep_exchange: str | None = None) -> bool:
        """Nothing an execution wrote anywhere writable may be seen by the next one: the work root
        is removed and made anew, everything new in the scratch dirs goes, whatever its
        permissions, depth or name, and the exchange directory keeps only ``keep_exchange`` (the
        outputs being handed over). False when something stayed (the host must then be reset)."""
        root = Path(self.config.work_root)
        clean = True
        xchg = self._exchange_root
        for directory, keep in self._scratch_baseline.items():
            try:
                if stat.S_IMODE(os.stat(directory).st_mode) != self._scratch_modes[directory]:
                    os.chmod(directory, self._scratch_modes[directory])  # the cell chmod'ed it
                scrub.empty_except(directory, keep | ({xchg.name} if xchg and xchg.parent.as_posix() == directory else set()))
            except OSError:
                clean = False
        if xchg is not None:
            try:
                exchange.ensure_directory(xchg, self.uid)
                scrub.empty_except(str(xchg), {keep_exchange} if keep_exchange else set())
            except OSError:
                clean = False
        if root.parent.as_posix() not in self._scratch_baseline:
            try:
                scrub.empty_except(str(root), set())
            except OSError:
                clean = False
        try:
            root.mkdir(mode=0o700, exist_ok=True)
            info = os.stat(root, follow_symlinks=False)
            clean = clean and stat.S_ISDIR(info.st_mode) and info.st_uid == self.uid and not os.listdir(root)
        except OSError:
            return False
        ours = {root.name} | ({self._exchange_root.name} if self._exchange_root else set())
        return clean and not any(scrub.leftovers(d, keep | ours) for d, keep in self._scratch_baseline.items())

    # -- redaction --------------------------------------------------------------------------
    def _redact(self, text: str | None) -> str | None:
        if text is None:
            return None
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def _redact_runs(self, runs: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{"stream": r["stream"], "text": self._redact(r["text"]) or ""} for r in runs]

    def _redact_table(self, table: dict[str, Any] | None) -> dict[str, Any] | None:
        if table is None:
            return None
        redact = lambda text: self._redact(text) or ""  # noqa: E731
        return {**table, "columns": [redact(c) for c in table["columns"]], "index": [redact(i) for i in table["index"]],
                "rows": [[redact(x) for x in row] for row in table["rows"]], "index_name": redact(table["index_name"])}

    def _redact_error(self, error: Any) -> dict[str, str] | None:
        if not isinstance(error, dict):
            return None
        return {k: self._redact(str(error.get(k, ""))) or "" for k in ("name", "value", "traceback")}


class _ZygoteGoneBeforeStart(RuntimeError):
    """The zygote was lost before it started the execution's child."""


class SandboxTainted(RuntimeError):
    """Processes survived the sweep. The response is still returned, then the host must reset."""

    def __init__(self, response: dict[str, Any]) -> None:
        super().__init__("sandbox tainted")
        self.response = response


def _write_new(path: Path, content: bytes) -> None:
    with os.fdopen(exchange.new_file(path), "wb") as handle:
        handle.write(content)


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _read_regular_file_at(path: Path, limit: int) -> bytes | None:
    try:
        size = os.stat(path, follow_symlinks=False).st_size
    except OSError:
        return None
    return _read_regular_file(str(path), size) if size <= limit else None


def _phases(started: float, marks: dict[str, float]) -> dict[str, float]:
    """Where an execution's time went (prepare, run, sweep, collect_and_wipe), for benchmarks and logs."""
    phases, previous = {}, started
    for name, moment in marks.items():
        phases[name] = round((moment - previous) * 1000, 2)
        previous = moment
    return phases


def _exit_code_from(result: dict[str, Any] | None) -> int | None:
    """The status the child was about to exit with when we stopped waiting for it."""
    if result is None:
        return None
    return 1 if result.get("error") else 0


def _child_timings(result: dict[str, Any] | None) -> dict[str, float]:
    return {f"child_{k}": float(v) for k, v in (result or {}).get("timings_ms", {}).items()}


def _utf8_name(name: str, taken: set[str], notes: list[str]) -> str:
    """A file name the API can store and send: names that are not UTF-8 (the OS hands them over
    as surrogate escapes) are renamed, with a note saying from what."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        pass
    raw = name.encode("utf-8", "surrogateescape")
    stem = raw.decode("utf-8", "replace").replace("\ufffd", "_")
    renamed, counter = stem, 1
    while renamed in taken:
        counter += 1
        renamed = f"{stem}_{counter}"
    notes.append(f"file {raw!r} renamed to {renamed!r}: file names must be UTF-8")
    return renamed


def _read_some(fd: int) -> bytes:
    try:
        return os.read(fd, READ_CHUNK)
    except BlockingIOError:
        return b""
    except OSError:
        return b""


def _kill_group(pid: int) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            target()


def _parse_result(payload: bytes) -> dict[str, Any] | None:
    """The child's result frame, as hostile input: user code can write one itself. Only the known
    fields, each of the expected type, survive; anything malformed (even JSON nested too deep to
    parse) is no result at all, never a runner failure."""
    try:
        value = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    error = value.get("error")
    clean: dict[str, Any] = {
        "display": value["display"] if isinstance(value.get("display"), str) else None,
        "table": clean_table(value.get("table")),
        "error": {k: str(error.get(k, "")) for k in ("name", "value", "traceback")} if isinstance(error, dict) else None,
        "memory_error": value.get("memory_error") is True,
        "session_notes": [n for n in value.get("session_notes") or [] if isinstance(n, str)]
        if isinstance(value.get("session_notes"), list) else [],
        "restored_files": [f for f in value.get("restored_files") or [] if _is_stamp(f)]
        if isinstance(value.get("restored_files"), list) else [],
        "timings_ms": {k: v for k, v in value["timings_ms"].items() if isinstance(v, (int, float))}
        if isinstance(value.get("timings_ms"), dict) else {},
    }
    return clean


def clean_table(value: Any) -> dict[str, Any] | None:
    """The child's table of a trailing DataFrame, as hostile input: exactly the expected shape and
    bounds (cell.MAX_TABLE_*), else no table (the text display stays)."""
    from .cell import MAX_CELL_CHARS, MAX_TABLE_COLUMNS, MAX_TABLE_ROWS

    def texts(items: Any, most: int) -> bool:
        return isinstance(items, list) and len(items) <= most and all(
            isinstance(t, str) and len(t) <= MAX_CELL_CHARS for t in items)

    if not isinstance(value, dict):
        return None
    columns, index, rows, shape = value.get("columns"), value.get("index"), value.get("rows"), value.get("shape")
    name = value.get("index_name")
    if not (texts(columns, MAX_TABLE_COLUMNS) and texts(index, MAX_TABLE_ROWS) and isinstance(rows, list)
            and len(rows) == len(index) and all(texts(r, MAX_TABLE_COLUMNS) and len(r) == len(columns) for r in rows)
            and isinstance(shape, list) and len(shape) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
            and isinstance(name, str) and len(name) <= MAX_CELL_CHARS):
        return None
    return {"columns": columns, "index": index, "rows": rows, "shape": shape, "index_name": name}


def _is_stamp(item: Any) -> bool:
    """[name, size, mtime_ns], as the child reports a file it restored from the session."""
    return (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)
            and all(isinstance(n, int) and not isinstance(n, bool) for n in item[1:]))


def _walk_no_follow(root: Path, depth: int) -> list[tuple[str, os.DirEntry[str]]]:
    found: list[tuple[str, os.DirEntry[str]]] = []
    stack = [(root, "", 0)]
    while stack and len(found) < 1000:
        directory, prefix, level = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            relative = f"{prefix}{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                if level + 1 < depth and not entry.name.startswith("."):
                    stack.append((Path(entry.path), relative + "/", level + 1))
                continue
            if entry.name.startswith(".") or entry.name == "__pycache__":
                continue
            found.append((relative, entry))
    return found


def _read_regular_file(path: str, size: int) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):
            return None
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks = []
        remaining = size
        while remaining > 0:
            data = os.read(fd, min(remaining, 1 << 20))
            if not data:
                break
            chunks.append(data)
            remaining -= len(data)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _classify(
    timed_out: bool,
    truncated: bool,
    result: dict[str, Any] | None,
    exit_info: _Exit | None,
    notes: list[str],
    budget: float,
    config: SandboxConfig,
) -> str:
    signal_number = exit_info.signal if exit_info else None
    if timed_out:
        notes.append(f"execution stopped: wall-clock limit of {budget:g} s reached")
        return "timeout"
    if truncated:
        notes.append(f"execution stopped: output limit of {config.max_output_bytes} bytes reached; output truncated")
        return "output_truncated"
    if signal_number == signal.SIGXCPU:
        notes.append("execution stopped: CPU time limit reached")
        return "timeout"
    if result is not None:
        if result.get("memory_error"):
            notes.append(f"execution ran out of memory (limit {config.memory_mb} MB)")
            return "memory"
        return "error" if result.get("error") else "ok"
    if signal_number is not None:
        name = signal.Signals(signal_number).name if signal_number in signal.Signals._value2member_map_ else str(signal_number)
        notes.append(f"the interpreter was killed by signal {name} before the cell finished")
        return "crashed"
    if exit_info is not None and exit_info.returncode is not None:
        notes.append(f"the process exited with status {exit_info.returncode} before the cell finished")
        return "error" if exit_info.returncode != 0 else "ok"
    notes.append("the interpreter stopped without reporting a result")
    return "crashed"
