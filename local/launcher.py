"""Start `python -m local.serve` as a child process and wait until it listens (tests, benchmarks)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """A running `make serve`; its output goes to ``log_path``."""

    def __init__(self, env: dict[str, str] | None = None, log_path: str | Path | None = None,
                 port: int | None = None, start_timeout_s: float = 180.0) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path) if log_path else None
        full_env = {**os.environ, "PORT": str(self.port), **(env or {})}
        self.process = subprocess.Popen([sys.executable, "-m", "local.serve", "--port", str(self.port)], cwd=ROOT,
                                        env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.startup = self._wait_until_listening(start_timeout_s)
        threading.Thread(target=self._drain, daemon=True).start()

    def _wait_until_listening(self, timeout_s: float) -> str:
        assert self.process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "listening on" in line:
                return "".join(lines)
        self.process.kill()
        raise RuntimeError("the server did not start:\n" + "".join(lines))

    def _drain(self) -> None:
        """Keep reading its output (one line per request) so it never blocks on a full pipe."""
        assert self.process.stdout is not None
        sink = self.log_path.open("w") if self.log_path else open(os.devnull, "w")  # noqa: SIM115
        with sink:
            sink.write(self.startup)
            for line in self.process.stdout:
                sink.write(line)
                sink.flush()

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM, as a service manager would; SIGKILL if it does not stop in time."""
        self.process.terminate()
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        """SIGKILL: a crash, as far as the server can tell."""
        self.process.kill()
        self.process.wait()
