"""Local sandbox invoker: the sandbox handler in long-lived bubblewrap workers.

Each worker stands in for one warm Lambda container: the same ``sandbox_runner`` code, started
once (pre-warmed zygote), answering one execution at a time over JSON lines. Isolation follows
the recipe in the security notes: an unprivileged uid (setpriv, when we are root), new
user/pid/net/ipc/uts namespaces, no nested user namespaces, read-only root, a size- and
inode-limited tmpfs work area, a clean environment. Without bubblewrap nothing runs: the
result says why.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ServiceUnavailable
from ..sandbox.exchange import InputMissing, InputsTooLarge
from ..sandbox.port import ExecutionRequest, ExecutionResult, result_from_response
from .local_exchange import HostExchange
from .worker_cgroup import PREFIX, WorkerCgroup, reclaim_cgroups

NOBODY = 65534
# Host directories of a pool, named after the server's pid so that the next server can tell
# which ones a killed server left behind (mounted tmpfs work areas, copies of the runner).
CODE_PREFIX, WORK_AREA_PREFIX = "agents-sbx-code-", "agents-sbx-tmp-"
RETRY_AFTER_S = 2
# Tasks (processes and threads) a worker may hold in all: the runner's own, the execution's
# allowance (SANDBOX_PROCESSES, 64 by default), and room for the zygote and its spare.
WORKER_PIDS = 256
# Inside the worker: its /tmp, and the exchange directory on it (sandbox_runner/exchange.py).
EXCHANGE_DIR = "xchg"
CANCEL_POLL_S = 0.1  # how soon a cancelled execution's worker is stopped


@dataclass(frozen=True)
class LocalSandboxConfig:
    python: str  # the sandbox interpreter (a venv readable by the unprivileged uid)
    runner_dir: str  # the directory holding the sandbox_runner package
    workers: int = 2
    timeout_s: float = 30.0
    memory_mb: int = 1024
    max_output_bytes: int = 100_000
    # The worker's /tmp (a tmpfs of its own, in memory only as far as it is filled): room for an
    # execution's inputs (max_input_bytes), what the code writes and the session state it leaves.
    work_area_mb: int = 2048
    work_area_inodes: int = 4096
    max_input_bytes: int = 1024 * 1024 * 1024
    max_session_bytes: int = 256 * 1024 * 1024
    extra_env: dict[str, str] = field(default_factory=dict)
    wait_s: float = 10.0  # how long a request waits for a free worker before a 503
    # CPUs one worker may use at most (a CFS quota); 0: no cap, only an equal share under load.
    cpus: float = 0.0


class IsolationUnavailable(RuntimeError):
    """No way to isolate code on this machine; code must not run."""


def reclaim_leftovers(root: str | None = None) -> list[str]:
    """Unmount and remove what pools of servers that no longer run left in the temp dir (a server
    killed with SIGKILL cannot clean up). A pool's directories carry its server's pid."""
    root = root or tempfile.gettempdir()
    removed = []
    for entry in os.scandir(root):
        for prefix in (CODE_PREFIX, WORK_AREA_PREFIX):
            if not left_by_a_dead_server(entry.name, prefix):
                continue
            if prefix == WORK_AREA_PREFIX and os.path.ismount(entry.path):
                subprocess.run(["umount", "-l", entry.path], capture_output=True, check=False)
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed


def left_by_a_dead_server(name: str, prefix: str) -> bool:
    """``<prefix><server pid>-...``, where that server is no longer running."""
    owner = name[len(prefix):].partition("-")[0] if name.startswith(prefix) else ""
    if not owner.isdigit() or int(owner) == os.getpid():
        return False
    try:
        os.kill(int(owner), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # running, as another user
    return False


def _world_readable_copy(source: str) -> str:
    """Copy the runner package somewhere the unprivileged uid can read (the repo may be in /root)."""
    target = tempfile.mkdtemp(prefix=f"{CODE_PREFIX}{os.getpid()}-")
    shutil.copytree(Path(source) / "sandbox_runner", Path(target) / "sandbox_runner",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for directory, _dirs, files in os.walk(target):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(Path(directory) / name, 0o644)
    return target


class _Worker:
    """One bubblewrap-isolated sandbox process."""

    def __init__(self, config: LocalSandboxConfig, code_dir: str) -> None:
        self.config = config
        self.work_area: str | None = None
        self.mounted = False
        argv = self._command(code_dir)
        # All the worker's processes together: its footprint plus one execution (see worker_cgroup).
        self.cgroup = WorkerCgroup.create(f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}")
        self.process = subprocess.Popen(
            self.cgroup.wrap(argv) if self.cgroup else argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin"},
            start_new_session=True,
            bufsize=0,
        )
        self._buffer = b""
        hello_line = self._read_line(timeout=180.0)
        hello = json.loads(hello_line) if hello_line else {"ready": False, "error": "the worker did not start"}
        if not hello.get("ready"):
            self.stop()
            raise IsolationUnavailable(f"the sandbox worker failed to start: {hello.get('error')}")
        if self.cgroup is not None:
            limit = self.cgroup.limit(config.memory_mb * 1024 * 1024, pids=WORKER_PIDS)
            hello.setdefault("isolation", {})["worker_memory_limit_mb"] = limit >> 20
            hello["isolation"].update(self.cgroup.share_cpu(config.cpus))
        self.hello = hello

    def _work_area_bind(self) -> list[str]:
        mb = self.config.work_area_mb
        if os.geteuid() == 0:
            # A host tmpfs gives an inode limit as well as a size limit (bwrap's --size has none).
            self.work_area = tempfile.mkdtemp(prefix=f"{WORK_AREA_PREFIX}{os.getpid()}-")
            options = f"size={mb}m,nr_inodes={self.config.work_area_inodes},mode=0700,uid={NOBODY},gid={NOBODY}"
            mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", self.work_area],
                                     capture_output=True, check=False)
            if mounted.returncode == 0:
                self.mounted = True
                return ["--bind", self.work_area, "/tmp"]
            shutil.rmtree(self.work_area, ignore_errors=True)
        # Not root (or no tmpfs): a host directory, so that inputs and outputs can still be
        # exchanged by reference; its size is bounded per file only (RLIMIT_FSIZE).
        self.work_area = tempfile.mkdtemp(prefix=f"{WORK_AREA_PREFIX}{os.getpid()}-")
        return ["--bind", self.work_area, "/tmp"]

    def exchange_root(self) -> str | None:
        """The host path of the worker's exchange directory (its runner creates it at start)."""
        return os.path.join(self.work_area, EXCHANGE_DIR) if self.work_area else None

    def _command(self, code_dir: str) -> list[str]:
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise IsolationUnavailable("bubblewrap (bwrap) is not installed; run `make serve` or apt-get install bubblewrap")
        venv = str(Path(self.config.python).parent.parent)
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
            "SANDBOX_TIMEOUT_S": str(self.config.timeout_s),
            "SANDBOX_MEMORY_MB": str(self.config.memory_mb),
            "SANDBOX_MAX_OUTPUT_BYTES": str(self.config.max_output_bytes),
            "SANDBOX_WORK_ROOT": "/tmp/sbx",
            "SANDBOX_EXCHANGE_DIR": f"/tmp/{EXCHANGE_DIR}",
            "SANDBOX_MAX_INPUT_BYTES": str(self.config.max_input_bytes),
            "SANDBOX_MAX_SESSION_BYTES": str(self.config.max_session_bytes),
            **self.config.extra_env,
        }
        prefix: list[str] = []
        if os.geteuid() == 0:
            # Drop to nobody first: RLIMIT_NPROC does not bind root, and a root-owned userns
            # would map the child to host root.
            prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                      "--inh-caps=-all", "--bounding-set=-all", "--"]
        # --as-pid-1: the runner is pid 1 of the sandbox's pid namespace. Without it bubblewrap's
        # own init would be pid 1 there: same uid, dumpable, no seccomp filter, outliving every
        # execution, so a cell could ptrace it or write /proc/1/mem and plant code that reads
        # later tenants' work. The runner is non-dumpable, and the kernel drops signals sent to
        # a namespace's init from inside it.
        argv = [*prefix, bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
                "--new-session", "--as-pid-1", "--clearenv"]
        for key, value in env.items():
            argv += ["--setenv", key, value]
        argv += ["--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
                 "--symlink", "usr/bin", "/bin", "--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache",
                 "--proc", "/proc", "--dev", "/dev",
                 # Read-only, as in Lambda: /dev (a tmpfs of half the host's memory, where a cell
                 # could leave files, or swap /dev/stdout for a file that captures the next
                 # tenant's output; no /dev/shm then, as in Lambda) and /proc/sys (pid_max, the
                 # worker's namespace limits, would otherwise be writable by a cell).
                 "--remount-ro", "/dev", "--ro-bind", "/proc/sys", "/proc/sys"]
        # /tmp first: a later bind under /tmp would otherwise be hidden by it.
        argv += self._work_area_bind()
        argv += ["--ro-bind", venv, venv, "--ro-bind", code_dir, "/opt/sandbox-code",
                 "--remount-ro", "/", "--cap-drop", "ALL", "--chdir", "/tmp", "--",
                 self.config.python, "-I", "-c",
                 "import sys; sys.path.insert(0, '/opt/sandbox-code'); "
                 "from sandbox_runner.worker import main; main()"]
        return argv

    def _read_line(self, timeout: float, cancelled: Any = None) -> str | None:
        """Read one line, giving up after ``timeout`` (the worker may be wedged), or as soon as
        ``cancelled`` (a threading.Event) is set."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if cancelled is not None and cancelled.is_set():
                return None
            wait = remaining if cancelled is None else min(remaining, CANCEL_POLL_S)
            if remaining <= 0:
                return None
            if not select.select([fd], [], [], wait)[0]:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("utf-8", "replace")

    def execute(self, event: dict[str, object], timeout: float, on_output: Any = None,
                cancelled: Any = None) -> dict[str, object] | None:
        """The response to ``event``; the live lines before it go to ``on_output``. None: the
        worker died, hung, or the caller cancelled (the worker must then be replaced)."""
        assert self.process.stdin is not None
        if on_output is not None:
            event = {**event, "live": True}
        try:
            self.process.stdin.write(json.dumps(event).encode() + b"\n")
        except (BrokenPipeError, OSError):
            return None
        deadline = time.monotonic() + timeout
        while True:
            line = self._read_line(timeout=max(0.0, deadline - time.monotonic()), cancelled=cancelled)
            if not line:
                return None
            message = json.loads(line)
            live = message.get("live") if isinstance(message, dict) else None
            if not isinstance(live, dict):
                return message  # type: ignore[no-any-return]
            if on_output is not None:
                on_output(str(live.get("stream", "stdout")), str(live.get("text", "")))

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, 9)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        if self.work_area:
            if self.mounted:
                subprocess.run(["umount", "-l", self.work_area], capture_output=True, check=False)
            shutil.rmtree(self.work_area, ignore_errors=True)
        if self.cgroup is not None:
            self.cgroup.remove()


class LocalSandbox:
    """A pool of bubblewrap workers; implements the Sandbox port. Thread-safe."""

    def __init__(self, config: LocalSandboxConfig) -> None:
        self.config = config
        reclaim_leftovers()
        reclaim_cgroups(left_by_a_dead_server)
        self._code_dir: str | None = None
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()  # idle and busy, so that close() stops every one
        self._busy: dict[str | None, int] = {}  # executions running per tenant (workspace)
        self._started = 0  # workers running or starting
        self._closed = False
        self._unavailable: str | None = None
        # Workers are started from these long-lived threads only: bwrap's --die-with-parent is
        # PR_SET_PDEATHSIG, which fires when the *thread* that spawned it ends, so a worker
        # started from a request thread would be killed when that request finished.
        self._spawner = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="sandbox-spawner")

    def _code(self) -> str:
        with self._cond:
            if self._code_dir is None:
                self._code_dir = _world_readable_copy(self.config.runner_dir)
            return self._code_dir

    def _share(self) -> int:
        """Workers one tenant may hold at once: all but one, so that one tenant's cells, however
        many and however long, always leave a worker for everyone else."""
        return max(1, self.config.workers - 1)

    def _acquire(self, tenant: str | None) -> _Worker:
        """An idle worker, or a new one while under the pool size, within the tenant's share;
        waits at most ``wait_s``."""
        deadline = time.monotonic() + self.config.wait_s
        with self._cond:
            while True:
                if self._closed:
                    raise IsolationUnavailable("the sandbox is shutting down")
                if self._busy.get(tenant, 0) < self._share():
                    if self._idle:
                        self._busy[tenant] = self._busy.get(tenant, 0) + 1
                        return self._idle.pop()
                    if self._started < self.config.workers:
                        self._started += 1
                        self._busy[tenant] = self._busy.get(tenant, 0) + 1
                        break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    mine = self._busy.get(tenant, 0)
                    raise ServiceUnavailable(
                        f"this workspace already runs {mine} executions, its share of the code interpreter's "
                        f"{self.config.workers} workers; retry shortly" if mine >= self._share() else
                        f"every code interpreter worker ({self.config.workers}) stayed busy for "
                        f"{self.config.wait_s:g} s; retry shortly", retry_after_s=RETRY_AFTER_S)
                self._cond.wait(remaining)
        try:
            return self._spawner.submit(self._launch).result()
        except BaseException:
            self._done(tenant)
            raise

    def _launch(self) -> _Worker:
        """Start a worker in a slot already counted in ``_started`` (run on a spawner thread, see
        __init__); the slot is given back if it fails."""
        try:
            worker = _Worker(self.config, self._code())
        except BaseException:
            self._forget(None)
            raise
        with self._cond:
            self._all.add(worker)
        return worker

    def _done(self, tenant: str | None) -> None:
        """The tenant's execution is over: one more of its share is free."""
        with self._cond:
            self._busy[tenant] = self._busy.get(tenant, 1) - 1
            if self._busy[tenant] <= 0:
                del self._busy[tenant]
            self._cond.notify_all()

    def _forget(self, worker: _Worker | None) -> None:
        """A worker slot is free again (its worker stopped, or never started)."""
        with self._cond:
            self._started -= 1
            self._all.discard(worker)  # type: ignore[arg-type]
            self._cond.notify()

    def _release(self, worker: _Worker, healthy: bool) -> None:
        if healthy and worker.alive():
            with self._cond:
                if not self._closed:
                    self._idle.append(worker)
                    self._cond.notify()
                    return
        worker.stop()
        self._forget(worker)
        with self._cond:
            replace = not self._closed
        if replace:  # start the replacement now, so no caller waits for a worker's start-up
            with contextlib.suppress(RuntimeError):  # the spawner was shut down meanwhile
                self._spawner.submit(self._start_spare_worker)

    def _start_spare_worker(self) -> None:
        with self._cond:
            if self._closed or self._started >= self.config.workers:
                return
            self._started += 1
        try:
            worker = self._launch()
        except Exception:  # noqa: BLE001 - a later caller starts one (and reports why it cannot)
            return
        self._release(worker, True)

    def warm_up(self) -> dict[str, object]:
        """Start every worker now, in parallel (serve does this so no request waits for one)."""
        with self._cond:
            missing = self.config.workers - self._started
            self._started += missing
        pending = [self._spawner.submit(self._launch) for _ in range(missing)]
        started, failures = [], []
        for future in pending:
            try:
                started.append(future.result())
            except IsolationUnavailable as exc:
                failures.append(exc)
        for worker in started:
            self._release(worker, True)
        with self._cond:
            idle = list(self._idle)
        if failures and not started and not idle:
            raise failures[0]
        return (started or idle)[0].hello

    def execute(self, request: ExecutionRequest) -> ExecutionResult:
        if self._unavailable:
            return ExecutionResult.unavailable(self._unavailable)
        try:
            worker = self._acquire(request.tenant)
        except IsolationUnavailable as exc:
            self._unavailable = str(exc)
            return ExecutionResult.unavailable(str(exc))
        try:
            return self._run_on(worker, request)
        finally:
            self._done(request.tenant)

    def _run_on(self, worker: _Worker, request: ExecutionRequest) -> ExecutionResult:
        """Send the request (its data by reference through the worker's exchange directory when
        it has any), wait for the response, take the outputs, and only then free the worker."""
        root = worker.exchange_root()
        exchange = None
        if request.by_reference() and root is not None:
            exchange = HostExchange(root, request.blobs, NOBODY if os.geteuid() == 0 else None,
                                    self.config.max_input_bytes)
        healthy = False
        try:
            try:
                event = exchange.send(request, request.to_event()) if exchange else request.inlined().to_event()
            except (InputsTooLarge, InputMissing) as exc:
                healthy = True
                return ExecutionResult(status="error", notes=[str(exc)])
            except OSError as exc:  # e.g. the exchange directory is not a plain directory of the worker's
                return ExecutionResult(status="crashed", notes=[f"the sandbox's exchange directory was unusable "
                                                                f"({exc.strerror}); the worker has been replaced"])
            response, healthy = self._exchange_lines(worker, event, request.timeout_s, request.on_output,
                                                     request.cancelled)
            result = result_from_response(response) if response is not None else ExecutionResult(
                status="crashed", notes=["the sandbox worker stopped or timed out; it has been replaced"])
            result.isolation["tenant_isolation"] = "per execution: a bubblewrap worker's namespaces, shared in turn"
            if exchange is not None and response is not None:
                exchange.receive(result, request.room_bytes)
            return result
        finally:
            if exchange is not None and not exchange.close():
                healthy = False
            self._release(worker, healthy)

    def _exchange_lines(self, worker: _Worker, event: dict[str, object], timeout_s: float | None,
                        on_output: Any = None, cancelled: Any = None) -> tuple[dict[str, object] | None, bool]:
        """One request line, one response line. A worker that died or hung on the request is
        replaced, and the request fails once, cleanly (it is not retried, so a request that
        crashes workers cannot loop); one that answered but is resetting itself (its execution
        left something it could not clean) is not handed to the next caller either."""
        response = worker.execute(event, timeout=(timeout_s or self.config.timeout_s) + 15.0,
                                  on_output=on_output, cancelled=cancelled)
        if response is None:
            return None, False
        return response, worker.alive() and not response.get("worker_reset")

    def close(self) -> None:
        """Stop every worker, busy ones included, unmount their work areas, remove the code copy."""
        with self._cond:
            self._closed = True
            workers = list(self._all)
            self._idle.clear()
            self._cond.notify_all()
        for worker in workers:
            worker.stop()
        if self._code_dir:
            shutil.rmtree(self._code_dir, ignore_errors=True)
        self._spawner.shutdown(wait=False)
