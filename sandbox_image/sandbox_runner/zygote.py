"""The pre-warmed parent: imports the heavy libraries once, then forks one child per execution.

It is started by the runner with a clean, allow-listed environment (exec'd, so it never held the
runner's secrets, not even in freed memory), talks over a SOCK_SEQPACKET socket on fd 3 and runs
no user code itself. Children are forks of it: they pay neither interpreter start-up nor
``import pandas``.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import sys
import warnings
from typing import Any

from . import child, proc, seccomp

CONTROL_FD = 3


def preload(modules: list[str]) -> list[str]:
    loaded = []
    if any(name.startswith("matplotlib") for name in modules):
        import matplotlib

        matplotlib.use("Agg")
        # plt.show() is a no-op here; the figures are collected after the cell.
        warnings.filterwarnings("ignore", message=".*non-interactive.*cannot be shown")
    for name in modules:
        try:
            importlib.import_module(name)
            loaded.append(name)
        except Exception as exc:  # noqa: BLE001 - a missing library must not stop the sandbox
            print(f"zygote: could not preload {name}: {exc}", file=sys.stderr)
    return loaded


def probe_seccomp() -> bool:
    """Fork a throw-away child that installs the filter and tries an AF_INET socket."""
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
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.send(json.dumps(message).encode())


def _wait_for(pid: int) -> dict[str, Any]:
    while True:
        try:
            got, status, usage = os.wait4(-1, 0)
        except ChildProcessError:
            return {"returncode": None, "signal": None, "max_rss_kb": 0}
        if got == pid:
            signal_number = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
            return {"returncode": code, "signal": signal_number, "max_rss_kb": usage.ru_maxrss}


def serve(sock: socket.socket, seccomp_ok: bool) -> None:
    while True:
        message, fds, _, _ = socket.recv_fds(sock, 1 << 20, 2)
        if not message:
            return
        request = json.loads(message)
        if request["op"] == "reap":
            proc.reap_children()
            _send(sock, {"event": "reaped"})
            continue
        raw_w, chan_w = fds
        pid = os.fork()
        if pid == 0:
            request["seccomp"] = seccomp_ok
            child.run(request, raw_w, chan_w)
        os.close(raw_w)
        os.close(chan_w)
        _send(sock, {"event": "started", "pid": pid})
        _send(sock, {"event": "exited", "pid": pid, **_wait_for(pid)})


def main() -> None:
    proc.make_non_dumpable()
    proc.make_subreaper()
    sock = socket.socket(fileno=CONTROL_FD)
    modules = [name for name in os.environ.get("SANDBOX_PRELOAD", "").split(",") if name]
    loaded = preload(modules)
    seccomp_ok = probe_seccomp()
    _send(sock, {"event": "ready", "pid": os.getpid(), "preloaded": loaded, "seccomp": seccomp_ok})
    serve(sock, seccomp_ok)


if __name__ == "__main__":
    main()
