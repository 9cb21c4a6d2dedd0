"""A memory, pids and cpu cgroup (v1) around one local sandbox worker.

``SANDBOX_MEMORY_MB`` is each process's address-space limit (``RLIMIT_AS``): a cell that forks
could hold that much in every process it is allowed. The cgroup bounds what the worker's
processes hold together: its own footprint (runner, zygote, spare), measured once it is warm,
plus one execution's memory. Past it the kernel's OOM killer acts inside this worker only (the
cell's biggest processes go first), never on another tenant's worker or the server.

CPU: the worker's processes share one scheduling group (``cpu.shares``, the same weight for
every worker). The kernel shares CPU between groups first, then within a group, so a cell's 60
busy processes, each in its own session (``setsid``, which would otherwise make each its own
autogroup), still get one worker's share while another tenant's cell waits. An optional CFS quota
caps a worker at some CPUs even when the machine is idle.

Needs root and the cgroup v1 memory and pids controllers (as on this project's machines; cpu is
used when present); elsewhere (cgroup v2 only, or no root) the pool runs without it and says so
in the worker's isolation report: memory is then bounded per process only, and CPU is shared by
the kernel's autogroups (one per worker session; the seccomp filter refuses ``setsid`` to cells,
so they cannot make more). In Lambda the function's memory setting is the bound, and each
tenant has its own environments.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import time
from collections.abc import Callable
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "pids")
OPTIONAL_CONTROLLERS = ("cpu",)  # grouped scheduling: used where the hierarchy is mounted
PREFIX = "agents-sbx-"
CPU_SHARES = 1024  # every worker alike; v1's default weight
CFS_PERIOD_US = 20_000  # short periods: the cap holds smoothly, not as 100 ms bursts on every core


def _own_path(controller: str) -> str | None:
    """This process's cgroup path in a v1 hierarchy, e.g. ``/`` or ``/process_api/abc``."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return path
    return None


class WorkerCgroup:
    def __init__(self, paths: dict[str, Path]) -> None:
        self.paths = paths

    @classmethod
    def create(cls, name: str) -> WorkerCgroup | None:
        """A new cgroup in each controller, beside ours; None where that is not possible."""
        if os.geteuid() != 0:
            return None
        paths: dict[str, Path] = {}
        for controller in CONTROLLERS:
            own = _own_path(controller)
            base = CGROUP_ROOT / controller / (own or "/").lstrip("/")
            if own is None or not (base / "cgroup.procs").exists():
                cls(paths).remove()
                return None
            try:
                (base / name).mkdir()
            except OSError:
                cls(paths).remove()
                return None
            paths[controller] = base / name
        for controller in OPTIONAL_CONTROLLERS:
            own = _own_path(controller)
            base = CGROUP_ROOT / controller / (own or "/").lstrip("/")
            if own is not None and (base / "cgroup.procs").exists():
                with contextlib.suppress(OSError):
                    (base / name).mkdir()
                    paths[controller] = base / name
        return cls(paths)

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` run from inside the cgroup: a shell moves itself in, then execs it (same pid,
        so everything the worker starts is in from its first instruction). Safer than a
        preexec_fn in a threaded server."""
        moves = " && ".join(f"echo $$ > {shlex.quote(str(path / 'cgroup.procs'))}" for path in self.paths.values())
        return ["/bin/sh", "-c", f'{moves} && exec "$@"', "sh", *argv]

    def share_cpu(self, cpus: float = 0.0) -> dict[str, object]:
        """One CPU weight for all the worker's processes; with ``cpus`` > 0, also a cap of that many
        CPUs. What was set, for the isolation report (empty without a cpu hierarchy)."""
        if "cpu" not in self.paths:
            return {}
        self._write("cpu", "cpu.shares", str(CPU_SHARES))
        report: dict[str, object] = {"worker_cpu_shares": CPU_SHARES}
        if cpus > 0:
            self._write("cpu", "cpu.cfs_period_us", str(CFS_PERIOD_US))
            self._write("cpu", "cpu.cfs_quota_us", str(int(cpus * CFS_PERIOD_US)))
            report["worker_cpu_limit"] = cpus
        return report

    def limit(self, extra_memory_bytes: int, pids: int) -> int:
        """Allow what the worker holds now plus ``extra_memory_bytes``; returns the memory limit."""
        self._write("pids", "pids.max", str(pids))
        limit = self._footprint() + extra_memory_bytes
        self._write("memory", "memory.limit_in_bytes", str(limit))
        with contextlib.suppress(OSError):  # no swap accounting on this kernel: nothing to bound
            self._write("memory", "memory.memsw.limit_in_bytes", str(limit))
        return limit

    def _footprint(self) -> int:
        """What the warm worker's processes hold that cannot be reclaimed: their anonymous memory.
        Not the cgroup's whole usage, nor its mapped files: file pages (the libraries read at
        start-up) are reclaimed under pressure and would become room beyond an execution's limit."""
        for line in (self._read("memory", "memory.stat") or "").splitlines():
            name, _, value = line.partition(" ")
            if name == "rss":
                return int(value)
        return int(self._read("memory", "memory.usage_in_bytes") or 0)

    def remove(self) -> None:
        """Delete it once its processes are gone (a cgroup with processes cannot be removed)."""
        for path in self.paths.values():
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)

    def _write(self, controller: str, name: str, value: str) -> None:
        (self.paths[controller] / name).write_text(value)

    def _read(self, controller: str, name: str) -> str | None:
        try:
            return (self.paths[controller] / name).read_text().strip()
        except OSError:
            return None


def reclaim_cgroups(stale: Callable[[str, str], bool]) -> list[str]:
    """Remove the worker cgroups whose name ``stale(name, PREFIX)`` says a server that no longer
    runs left behind."""
    removed = []
    for controller in (*CONTROLLERS, *OPTIONAL_CONTROLLERS):
        own = _own_path(controller)
        if own is None:
            continue
        base = CGROUP_ROOT / controller / own.lstrip("/")
        with contextlib.suppress(OSError):
            for entry in base.iterdir():
                if stale(entry.name, PREFIX):
                    with contextlib.suppress(OSError):
                        entry.rmdir()
                        removed.append(str(entry))
    return removed
