"""The pre-warmed parent: imports the heavy libraries once, then forks one child per execution.

It is started by the runner with a clean, allow-listed environment (exec'd, so it never held the
runner's secrets, not even in freed memory), talks over a SOCK_SEQPACKET socket on fd 3 and runs
no user code itself. Children are forks of it: they pay neither interpreter start-up nor
``import pandas``.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import mmap
import os
import select
import signal
import socket
import sys
import warnings
from typing import Any

from . import cell, child, proc, seccomp, warmup

CONTROL_FD = 3
WARM_AFTER_S = 0.03  # a spare idle this long warms up (see Spare)
COLD, WARMING, WARM = 0, 1, 2


def preload(modules: list[str]) -> list[str]:
    loaded = []
    if any(name.startswith("matplotlib") for name in modules):
        import matplotlib

        matplotlib.use("Agg")
        # plt.show() is a no-op here; the figures are collected after the cell.
        warnings.filterwarnings("ignore", message=".*non-interactive.*cannot be shown")
        cell.note_figures_the_code_saves()
    for name in modules:
        try:
            importlib.import_module(name)
            loaded.append(name)
        except Exception as exc:  # noqa: BLE001 - a missing library must not stop the sandbox
            print(f"zygote: could not preload {name}: {exc}", file=sys.stderr)
    return loaded


def probe_seccomp() -> tuple[bool, dict[str, str]]:
    """Whether the filter installs and refuses an AF_INET socket (tried in a throw-away child),
    and how the environment answered each way of installing one (seccomp.probe)."""
    pid = os.fork()
    if pid == 0:
        code = 2
        try:
            seccomp.install()
            try:
                socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
                code = 1
            except PermissionError:
                code = 0
        except Exception:  # noqa: BLE001
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, seccomp.probe()


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.send(json.dumps(message).encode())


def _status(status: int, usage: Any) -> dict[str, Any]:
    signal_number = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    return {"returncode": code, "signal": signal_number, "max_rss_kb": usage.ru_maxrss}


def _reap(exits: dict[int, dict[str, Any]]) -> None:
    """Collect every exited child (discarded spares, orphans we adopted as subreaper), keeping
    each status until its "exited" report is sent."""
    while True:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        exits[pid] = _status(status, usage)
        if len(exits) > 256:
            exits.pop(next(iter(exits)))  # statuses nobody asked for (spares, orphans)


def _collect(pid: int, exits: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The exit status of a child that has exited (its pidfd said so)."""
    if pid in exits:
        return exits.pop(pid)
    try:
        got, status, usage = os.wait4(pid, os.WNOHANG)
    except ChildProcessError:
        got = 0
    if got != pid:
        return {"returncode": None, "signal": None, "max_rss_kb": 0}
    return _status(status, usage)


class Spare:
    """A child forked ahead of time, waiting for its request.

    Forking a process holding pandas and matplotlib costs several milliseconds; doing it after
    an execution has been answered takes that off the next execution's critical path. The
    spare runs no user code until its request arrives, and is forked only after the previous
    execution's processes are all gone.

    It is ready as soon as it is locked down (cold). Only if no request comes within
    ``WARM_AFTER_S`` does it warm up (a typical data cell, taking its copy-on-write faults):
    under load, requests come back to back and a warm-up would be CPU thrown away, since a spare
    still warming is discarded for a cold one. Its state is a byte in a page shared with the
    zygote, never a message: the spare must not write to its socket after "ready" (the zygote
    closes it on hand-over, and unread data there would reset the request).
    """

    def __init__(self, control: socket.socket, seccomp_ok: bool, loaded: list[str], warm: bool = True) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # Every process of our uid alive now outlives the execution this spare will run; the
        # execution's own processes are all younger. The child's filter protects exactly these.
        protected, groups = proc.protected_ids(os.getuid()) if seccomp_ok else (set(), set())
        self.state = mmap.mmap(-1, 1)  # shared with the spare: COLD, WARMING or WARM
        pid = os.fork()
        if pid == 0:
            try:
                # Never hold the runner's channel, but keep its fd number taken: the child later
                # puts its own channel on fd 3, and a file opened meanwhile (matplotlib opens
                # fonts lazily) must not land there.
                null = os.open(os.devnull, os.O_RDWR)
                os.dup2(null, control.fileno())
                os.close(null)
                control.detach()
                ours.close()
                child.prepare(seccomp_ok, protected, groups)
                theirs.send(b"ready")
                if warm and not select.select([theirs], [], [], WARM_AFTER_S)[0]:
                    self.state[0] = WARMING
                    child.warm(loaded)
                    self.state[0] = WARM
                message, fds, _, _ = socket.recv_fds(theirs, 1 << 20, 2)
            except BaseException:  # noqa: BLE001 - a broken spare just goes away
                os._exit(72)
            if not message or len(fds) != 2:
                os._exit(0)
            child.run(json.loads(message), fds[0], fds[1])  # closes every other fd, theirs included
        theirs.close()
        self.pid = pid
        self.sock = ours
        self.is_ready = False

    def intact(self, baseline: proc.Vitals) -> bool:
        """Not stopped, re-niced or limited since it was forked (defence in depth: the filter
        already keeps user code from touching it)."""
        return proc.healthy(proc.vitals(self.pid), baseline)

    def ready(self, wait_s: float = 0.0) -> bool:
        """Prepared, and not in the middle of its warm-up? Its "ready" must be read before the
        socket is closed: a unix socket closed with unread data resets the peer, which would
        lose the request."""
        if not self.is_ready and select.select([self.sock], [], [], wait_s)[0]:
            with contextlib.suppress(OSError):
                self.is_ready = self.sock.recv(16) == b"ready"
        return self.is_ready and self.state[0] != WARMING

    def usable(self) -> bool:
        """Worth handing a request now: not in the middle of its warm-up. One still preparing
        (just forked, as when executions come back to back) is waited for: it is a few
        milliseconds from ready, less than a new fork."""
        return self.state[0] != WARMING

    def discard(self) -> None:
        """Kill it without waiting for its memory teardown (milliseconds): it is reaped later."""
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        self.sock.close()
        self.state.close()

    def hand_over(self, message: bytes, fds: list[int]) -> bool:
        if not self.ready(wait_s=5.0):
            return False
        try:
            socket.send_fds(self.sock, [message], fds)
            return True
        except OSError:
            return False
        finally:
            self.sock.close()
            self.state.close()


def serve(sock: socket.socket, seccomp_ok: bool, loaded: list[str]) -> None:
    """Run requests carry only an execution id and its work dir: the code, the environment and
    the session arrive in a file of that dir, read by the child, so no tenant's data ever
    enters this process's memory, which every later child inherits.

    The zygote never blocks on a child: a running child is watched through a pidfd, so its exit
    (and the milliseconds its memory teardown takes) overlaps with forking the next spare."""
    spare: Spare | None = None
    baseline = proc.vitals(os.getpid())
    assert baseline is not None
    running: dict[int, tuple[int, str]] = {}  # pidfd -> (pid, execution id)
    exits: dict[int, dict[str, Any]] = {}  # statuses of children reaped before their pidfd was read
    warm = os.environ.get("SANDBOX_WARM_SPARE", "1") == "1"
    while True:
        readable = select.select([sock, *running], [], [])[0]
        for pidfd in [fd for fd in readable if fd in running]:
            pid, execution_id = running.pop(pidfd)
            os.close(pidfd)
            # Every report names its execution: the runner may stop listening before "exited"
            # (it does not wait for a finished child's teardown), and must not mistake a late one.
            _send(sock, {"event": "exited", "id": execution_id, "pid": pid, **_collect(pid, exits)})
        if sock not in readable:
            continue
        message, fds, _, _ = socket.recv_fds(sock, 1 << 20, 2)
        if not message:
            return
        request = json.loads(message)
        if request["op"] == "reap":
            # Sent (without waiting for an answer) once an execution's processes are all dead:
            # collect the zombies, then fork the next spare while the runner answers.
            _reap(exits)
            if spare is None:
                spare = Spare(sock, seccomp_ok, loaded, warm=warm)
            continue
        if spare is not None and not (spare.usable() and spare.intact(baseline)):
            # In the middle of its warm-up (executions back to back): a cold fork beats waiting.
            spare.discard()
            spare = None
        if spare is None or not spare.hand_over(message, fds):
            if spare is not None:
                spare.discard()
            spare = Spare(sock, seccomp_ok, loaded, warm=False)
            spare.hand_over(message, fds)
        pid, spare = spare.pid, None
        for fd in fds:
            os.close(fd)
        running[os.pidfd_open(pid)] = (pid, request["id"])
        _send(sock, {"event": "started", "id": request["id"], "pid": pid})


def main() -> None:
    proc.make_non_dumpable()
    proc.make_subreaper()
    sock = socket.socket(fileno=CONTROL_FD)
    modules = [name for name in os.environ.get("SANDBOX_PRELOAD", "").split(",") if name]
    loaded = preload(modules)
    cell.load_pretty()  # how a cell's last value is shown, inherited by every child
    warmup.run(loaded)
    # Move everything imported so far out of the collector's reach: a child's garbage
    # collections then do not walk (and copy-on-write) the whole inherited heap.
    gc.collect()
    gc.freeze()
    seccomp_ok, how = probe_seccomp()
    _send(sock, {"event": "ready", "pid": os.getpid(), "preloaded": loaded, "seccomp": seccomp_ok,
                 "seccomp_probe": how})
    serve(sock, seccomp_ok, loaded)


if __name__ == "__main__":
    main()
