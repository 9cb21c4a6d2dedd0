"""A memory and pids cgroup (v1) around one local sandbox worker.

``SANDBOX_MEMORY_MB`` is each process's address-space limit (``RLIMIT_AS``): a cell that forks
could hold that much in every process it is allowed. The cgroup bounds what the worker's
processes hold together: its own footprint (runner, zygote, spare), measured once it is warm,
plus one execution's memory. Past it the kernel's OOM killer acts inside this worker only (the
cell's biggest processes go first), never on another tenant's worker or the server.

Needs root and the cgroup v1 memory and pids controllers (as on this project's machines);
elsewhere the pool runs without it and says so in the worker's isolation report. In Lambda the
function's memory setting is the bound.
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
PREFIX = "agents-sbx-"


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
        return cls(paths)

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` run from inside the cgroup: a shell moves itself in, then execs it (same pid,
        so everything the worker starts is in from its first instruction). Safer than a
        preexec_fn in a threaded server."""
        moves = " && ".join(f"echo $$ > {shlex.quote(str(path / 'cgroup.procs'))}" for path in self.paths.values())
        return ["/bin/sh", "-c", f'{moves} && exec "$@"', "sh", *argv]

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
    for controller in CONTROLLERS:
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
