"""Process-level helpers: prctl flags and the kill sweep that leaves nothing of an execution alive."""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(option, value, 0, 0, 0) == 0


def make_non_dumpable() -> bool:
    """Hide this process's /proc/<pid>/environ and memory from same-uid children (and block ptrace)."""
    return _prctl(PR_SET_DUMPABLE, 0)


def make_subreaper() -> bool:
    """Orphaned descendants re-parent to us, so we can see and reap them."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def _status_fields(pid: int) -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
    except OSError:
        pass
    return fields


def ancestors(pid: int) -> set[int]:
    """The chain of parents of ``pid`` (excluding ``pid``)."""
    found: set[int] = set()
    current = pid
    while current > 1:
        parent = int(_status_fields(current).get("PPid", "0") or 0)
        if parent <= 0 or parent in found:
            break
        found.add(parent)
        current = parent
    found.add(1)
    return found


PF_EXITING = 0x4  # task flag: the task is in do_exit and will never run user code again


def _task_alive(pid: int, tid: str) -> bool:
    try:
        with open(f"/proc/{pid}/task/{tid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    state, flags = fields[0], int(fields[6])
    return state not in ("Z", "X", "x") and not flags & PF_EXITING


def _alive(pid: int) -> bool:
    """True while any thread of the process can still run user code.

    Looking at the process's own state is not enough: a main thread that called
    pthread_exit() shows the process as a zombie while its other threads keep running.
    """
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    return any(_task_alive(pid, tid) for tid in tids)


def processes_of_uid(uid: int, exclude: Iterable[int]) -> list[int]:
    """Pids whose real uid is ``uid`` (zombies included), minus ``exclude``."""
    excluded = set(exclude)
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in excluded:
            continue
        uid_line = _status_fields(int(name)).get("Uid", "")
        if uid_line and int(uid_line.split()[0]) == uid:
            pids.append(int(name))
    return pids


def protected_ids(uid: int) -> tuple[set[int], set[int]]:
    """Ids of every process of ``uid`` alive now: (pids and thread ids, process groups and sessions).

    Called in the zygote just before it forks a child: the execution's own processes are all
    younger, so these are exactly the ones that outlive it, which its seccomp filter protects.
    """
    ids: set[int] = set()
    groups: set[int] = set()
    for pid in processes_of_uid(uid, exclude=()):
        ids.add(pid)
        try:
            ids.update(int(tid) for tid in os.listdir(f"/proc/{pid}/task"))
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            groups.update((int(fields[2]), int(fields[3])))  # pgrp, session
        except (OSError, IndexError, ValueError):
            continue
    return ids, {g for g in groups if g > 0}


@dataclass(frozen=True)
class Vitals:
    """What user code could change about a same-uid process without ptrace: the runner compares
    the zygote's against those it had at start and replaces a zygote that was tampered with."""

    state: str
    nice: int
    limits: tuple[tuple[int, int], ...]
    affinity: frozenset[int]


_WATCHED_LIMITS = tuple(getattr(resource, n) for n in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_NPROC", "RLIMIT_NOFILE",
                                                        "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE"))


def vitals(pid: int) -> Vitals | None:
    """None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        limits = tuple(resource.prlimit(pid, which) for which in _WATCHED_LIMITS)
        affinity = frozenset(os.sched_getaffinity(pid))
    except (OSError, IndexError):
        return None
    return Vitals(state=fields[0], nice=int(fields[16]), limits=limits, affinity=affinity)


def healthy(now: Vitals | None, baseline: Vitals) -> bool:
    """Alive, not stopped or traced, and with the priority, limits and CPUs it started with."""
    return now is not None and now.state in ("S", "R", "D") and (now.nice, now.limits, now.affinity) == (
        baseline.nice, baseline.limits, baseline.affinity)


def count_tasks_of_uid(uid: int) -> int:
    """Processes plus threads of ``uid``: what RLIMIT_NPROC counts."""
    total = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _status_fields(int(name))
        uid_line = fields.get("Uid", "")
        if uid_line and int(uid_line.split()[0]) == uid:
            total += int(fields.get("Threads", "1") or 1)
    return total


def reap_children() -> None:
    """Collect every exited child of ours without blocking."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def sweep(uid: int, keep: Iterable[int], budget_s: float = 3.0) -> bool:
    """SIGKILL every process of ``uid`` except ``keep`` and our ancestors, until none can run.

    Catches ``setsid()`` daemons that left the execution's process group, and processes whose
    main thread exited while others run on. A process counts as gone once every thread is a
    zombie or exiting (PF_EXITING): from then on it cannot run user code, even if the kernel
    is still tearing down its memory. Returns False if something could still run when the
    budget ran out (the caller must then reset the sandbox).
    """
    protected = set(keep) | {os.getpid()} | ancestors(os.getpid())
    deadline = time.monotonic() + budget_s
    while True:
        victims = processes_of_uid(uid, protected)
        for pid in victims:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if not any(_alive(pid) for pid in victims):
            return True
        if time.monotonic() > deadline:
            return False
        reap_children()
        time.sleep(0.001)
