"""The seccomp-BPF filter installed in every child before user code runs.

It keeps user code out of every domain it would share with processes that outlive its execution
(the runner, the zygote, the Lambda runtime, pid 1): in Lambda all of them run under one uid with
no namespaces, so this filter, not the kernel's uid checks, draws the line. What it refuses, and
why, is listed in ``RULES`` below and in docs/security.md, each with the test that tries it.

- Only the native ABI: another audit arch (i386) is killed, x32 calls (``nr | 0x40000000``)
  get ENOSYS.
- Sockets: ``AF_UNIX`` only (no AF_INET/INET6 to the Lambda Runtime API on loopback, no
  AF_VSOCK, AF_NETLINK, AF_PACKET, AF_ALG...), refused with EACCES.
- Never needed by a data-analysis cell: ptrace and cross-process memory access, SysV IPC, POSIX
  message queues and keyrings (kernel objects that outlive the process that made them),
  perf_event_open, bpf, userfaultfd, io_uring (it opens sockets behind the filter's back),
  namespaces, mounts and module loading, and ``setsid`` (each new session is a scheduler
  autogroup of its own, a way around CPU fairness): EPERM (ENOSYS for clone3, so libc falls
  back to clone, whose flags the filter can read).
- Signals, rlimits, priority, affinity and scheduling only for the execution's own processes:
  the zygote hands the child the ids of every process of the uid that existed before it (the
  execution's processes are all younger), and calls naming one of them, its process group,
  or -1 (every process of the uid) get EPERM. fcntl/ioctl that route SIGIO to another process
  (F_SETOWN, F_SETSIG, FIOSETOWN, SIOCSPGRP) are refused outright.

Built by hand with ctypes so the image needs no libseccomp.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct
from collections.abc import Iterable
from dataclasses import dataclass

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_KILL_PROCESS = 0x80000000

# classic BPF opcodes
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
BPF_JSET_K = 0x45
BPF_JA = 0x05
BPF_RET_K = 0x06

AF_UNIX = 1
X32_SYSCALL_BIT = 0x40000000
# A thread id, pid or pgid compare needs two instructions; this bounds the filter's length.
MAX_PROTECTED_IDS = 64
CLONE_NAMESPACES = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080
F_SETOWN, F_SETSIG, F_SETOWN_EX = 8, 10, 15
FIOSETOWN, SIOCSPGRP, TIOCSPGRP, TIOCSTI = 0x8901, 0x8902, 0x5410, 0x5412
PRIO_USER = 2

# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]
_OFF_NR, _OFF_ARCH = 0, 4


def _arg_low(index: int) -> int:
    # Little-endian: the low 32 bits of args[i]. pid_t, int and unsigned int arguments are
    # truncated to these bits by the kernel, so the high half cannot smuggle another value.
    return 16 + 8 * index


@dataclass(frozen=True)
class Arch:
    audit: int
    nr: dict[str, int]


# Numbers from the kernel's unistd_64.h (x86_64) and asm-generic/unistd.h (aarch64);
# tests/unit/test_seccomp.py checks them against the headers where they are installed.
_COMMON_NAMES = (
    "socket", "socketpair", "io_uring_setup", "io_uring_enter", "io_uring_register", "ptrace", "process_vm_readv",
    "process_vm_writev", "kcmp", "shmget", "shmat", "shmdt", "shmctl", "msgget", "msgsnd", "msgrcv", "msgctl",
    "semget", "semop", "semtimedop", "semctl", "add_key", "request_key", "keyctl", "perf_event_open", "bpf",
    "userfaultfd", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
    "pidfd_open", "pidfd_send_signal", "pidfd_getfd", "unshare", "setns", "clone", "clone3", "mount", "umount2",
    "pivot_root", "chroot", "ioprio_set", "migrate_pages", "move_pages", "process_madvise", "process_mrelease",
    "kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "prlimit64", "setpriority",
    "sched_setaffinity", "sched_setscheduler", "sched_setparam", "sched_setattr", "fcntl", "ioctl",
    "open_by_handle_at", "fanotify_init", "kexec_load", "init_module", "finit_module", "delete_module", "acct",
    "swapon", "swapoff", "reboot", "syslog", "vhangup", "quotactl", "fsopen", "fsmount", "fspick", "move_mount",
    "open_tree", "mount_setattr", "personality", "setsid",
)
_X86_64 = (41, 53, 425, 426, 427, 101, 310, 311, 312, 29, 30, 67, 31, 68, 69, 70, 71, 64, 65, 220, 66, 248, 249,
           250, 298, 321, 323, 240, 241, 242, 243, 244, 245, 434, 424, 438, 272, 308, 56, 435, 165, 166, 155, 161,
           251, 256, 279, 440, 448, 62, 200, 234, 129, 297, 302, 141, 203, 144, 142, 314, 72, 16, 304, 300, 246,
           175, 313, 176, 163, 167, 168, 169, 103, 153, 179, 430, 432, 433, 429, 428, 442, 135, 112)
_AARCH64 = (198, 199, 425, 426, 427, 117, 270, 271, 272, 194, 196, 197, 195, 186, 189, 188, 187, 190, 193, 192, 191,
            217, 218, 219, 241, 280, 282, 180, 181, 182, 183, 184, 185, 434, 424, 438, 97, 268, 220, 435, 40, 39, 41,
            51, 30, 238, 239, 440, 448, 129, 130, 131, 138, 240, 261, 140, 122, 119, 118, 274, 25, 29, 265, 262, 104,
            105, 273, 106, 89, 224, 225, 142, 116, 58, 60, 430, 432, 433, 429, 428, 442, 92, 157)
ARCHES = {
    "x86_64": Arch(0xC000003E, dict(zip(_COMMON_NAMES, _X86_64, strict=True))),
    "aarch64": Arch(0xC00000B7, dict(zip(_COMMON_NAMES, _AARCH64, strict=True))),
}

# Refused whatever their arguments: (errno, reason) per group, for the security notes.
DENIED = {
    errno.EPERM: (
        # reading or writing another process: the runner and the zygote are non-dumpable, but pid 1
        # (Lambda's init, bubblewrap's) may not be
        "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise",
        "process_mrelease",
        # kernel objects owned by the uid or IPC namespace, which outlive the process that made them
        "shmget", "shmat", "shmdt", "shmctl", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop",
        "semtimedop", "semctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify",
        "mq_getsetattr", "add_key", "request_key", "keyctl",
        # kernel attack surface no cell needs
        "perf_event_open", "bpf", "userfaultfd", "open_by_handle_at", "fanotify_init", "personality",
        # a pidfd (also had by opening /proc/<pid>) can signal a process by fd, out of the filter's sight
        "pidfd_open", "pidfd_send_signal",
        # namespaces, mounts, modules, system state
        "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "fsopen", "fsmount", "fspick",
        "move_mount", "open_tree", "mount_setattr", "kexec_load", "init_module", "finit_module",
        "delete_module", "acct", "swapon", "swapoff", "reboot", "syslog", "vhangup", "quotactl",
        # another process's I/O priority or memory placement
        "ioprio_set", "migrate_pages",
        # a new session is a new scheduler autogroup: sixty busy processes, each in a session of its
        # own, took most of the CPU from another tenant's cell where no cgroup groups a worker
        "setsid",
    ),
    # io_uring does socket and file work behind the filter's back; clone3's flags sit behind a
    # pointer the filter cannot read: ENOSYS makes libc fall back to clone, whose flags it can.
    errno.ENOSYS: ("io_uring_setup", "io_uring_enter", "io_uring_register", "clone3"),
}

# Calls that name a process (argument indexes): refused when they name one that outlives the
# execution. kill(-1) and kill(-pgid) name many at once, handled with the negated group ids.
PID_ARGUMENTS = {
    "kill": (0,), "tkill": (0,), "tgkill": (0, 1), "rt_sigqueueinfo": (0,), "rt_tgsigqueueinfo": (0, 1),
    "prlimit64": (0,), "sched_setaffinity": (0,), "sched_setscheduler": (0,), "sched_setparam": (0,),
    "sched_setattr": (0,), "move_pages": (0,), "setpriority": (1,),
}


class _Program:
    def __init__(self) -> None:
        self.code: list[bytes] = []

    def stmt(self, code: int, k: int) -> None:
        self.code.append(struct.pack("HBBI", code, 0, 0, k & 0xFFFFFFFF))

    def jump(self, code: int, k: int, jt: int, jf: int) -> None:
        if not (0 <= jt <= 255 and 0 <= jf <= 255):
            raise ValueError("BPF jump out of range")
        self.code.append(struct.pack("HBBI", code, jt, jf, k & 0xFFFFFFFF))

    def ret(self, value: int) -> None:
        self.stmt(BPF_RET_K, value)

    def block(self, nr: int, body: _Program) -> None:
        """``if syscall == nr: body`` (the body ends in a return), any length."""
        self.stmt(BPF_LD_W_ABS, _OFF_NR)
        self.jump(BPF_JEQ_K, nr, 1, 0)
        self.stmt(BPF_JA, len(body.code))
        self.code.extend(body.code)

    def bytes(self) -> bytes:
        return b"".join(self.code)


def _errno(number: int) -> int:
    return SECCOMP_RET_ERRNO | number


def _refuse_values(body: _Program, arg: int, values: Iterable[int], number: int) -> None:
    body.stmt(BPF_LD_W_ABS, _arg_low(arg))
    for value in values:
        body.jump(BPF_JEQ_K, value, 0, 1)
        body.ret(_errno(number))


def build_filter(protected: Iterable[int] = (), protected_groups: Iterable[int] = (), machine: str | None = None) -> bytes:
    """The filter program. ``protected``: pids and thread ids user code must not touch;
    ``protected_groups``: their process groups (refused as ``-pgid`` and as PRIO_PGRP targets)."""
    arch = ARCHES[machine or platform.machine()]
    nr = arch.nr
    ids = sorted({i for i in protected if i > 0} | {g for g in protected_groups if g > 0})
    negated = sorted({-g for g in protected_groups if g > 0} | {-1})
    if len(ids) + len(negated) > MAX_PROTECTED_IDS:
        raise OSError(errno.E2BIG, f"too many processes to protect ({len(ids)})")
    prog = _Program()
    prog.stmt(BPF_LD_W_ABS, _OFF_ARCH)
    prog.jump(BPF_JEQ_K, arch.audit, 1, 0)
    prog.ret(SECCOMP_RET_KILL_PROCESS)  # a foreign ABI (i386) would dodge every rule below
    prog.stmt(BPF_LD_W_ABS, _OFF_NR)
    prog.jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1)
    prog.ret(_errno(errno.ENOSYS))  # x32 calls share the x86_64 audit arch: numbers with this bit set
    # The hottest calls (read, write, mmap... on x86_64) have numbers below every rule: allow them at once.
    lowest = min(nr[name] for name in _COMMON_NAMES)
    prog.jump(BPF_JGE_K, lowest, 1, 0)
    prog.ret(SECCOMP_RET_ALLOW)
    for number, names in DENIED.items():
        for name in names:
            prog.jump(BPF_JEQ_K, nr[name], 0, 1)
            prog.ret(_errno(number))
    for name in ("socket", "socketpair"):
        body = _Program()
        body.stmt(BPF_LD_W_ABS, _arg_low(0))
        body.jump(BPF_JEQ_K, AF_UNIX, 0, 1)
        body.ret(SECCOMP_RET_ALLOW)
        body.ret(_errno(errno.EACCES))
        prog.block(nr[name], body)
    clone = _Program()
    clone.stmt(BPF_LD_W_ABS, _arg_low(0))
    clone.jump(BPF_JSET_K, CLONE_NAMESPACES, 0, 1)
    clone.ret(_errno(errno.EPERM))
    clone.ret(SECCOMP_RET_ALLOW)
    prog.block(nr["clone"], clone)
    for name, cmds in (("fcntl", (F_SETOWN, F_SETSIG, F_SETOWN_EX)), ("ioctl", (FIOSETOWN, SIOCSPGRP, TIOCSPGRP, TIOCSTI))):
        body = _Program()
        _refuse_values(body, 1, cmds, errno.EPERM)
        body.ret(SECCOMP_RET_ALLOW)
        prog.block(nr[name], body)
    for name, args in PID_ARGUMENTS.items():
        body = _Program()
        if name == "setpriority":
            _refuse_values(body, 0, (PRIO_USER,), errno.EPERM)  # every process of the uid
        for arg in args:
            values = ids + negated if name in ("kill", "rt_sigqueueinfo") and arg == 0 else ids
            _refuse_values(body, arg, values, errno.EPERM)
        body.ret(SECCOMP_RET_ALLOW)
        prog.block(nr[name], body)
    prog.ret(SECCOMP_RET_ALLOW)
    return prog.bytes()


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


# seccomp(2) and its one operation used here; the number per architecture (unistd_64.h, asm-generic).
SECCOMP_SET_MODE_FILTER_OP = 1
SECCOMP_NR = {"x86_64": 317, "aarch64": 277}


def _errno_name(number: int) -> str:
    return errno.errorcode.get(number, str(number))


def _seccomp_syscall(libc: ctypes.CDLL, fprog: _SockFprog) -> int:
    """0, or the errno seccomp(SECCOMP_SET_MODE_FILTER) failed with."""
    if libc.syscall(SECCOMP_NR[platform.machine()], SECCOMP_SET_MODE_FILTER_OP, 0, ctypes.byref(fprog)) == 0:
        return 0
    return ctypes.get_errno() or errno.EPERM


def _prctl_seccomp(libc: ctypes.CDLL, fprog: _SockFprog) -> int:
    """0, or the errno prctl(PR_SET_SECCOMP) failed with."""
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) == 0:
        return 0
    return ctypes.get_errno() or errno.EPERM


def install(protected: Iterable[int] = (), protected_groups: Iterable[int] = ()) -> str:
    """Install the filter in the calling process (irreversible; inherited by its children), with
    seccomp(2), or prctl(PR_SET_SECCOMP) where that is refused (a parent filter may refuse one
    and not the other: Lambda is reported to refuse nested filters). Returns which one did it."""
    if platform.machine() not in ARCHES:
        raise OSError(errno.ENOSYS, f"no seccomp filter for {platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    program = build_filter(protected, protected_groups)
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.addressof(buffer))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
    by_syscall = _seccomp_syscall(libc, fprog)
    if by_syscall == 0:
        return "seccomp(2)"
    by_prctl = _prctl_seccomp(libc, fprog)
    if by_prctl == 0:
        return "prctl(PR_SET_SECCOMP)"
    raise OSError(by_prctl, f"seccomp filter refused: seccomp(2) {_errno_name(by_syscall)}, "
                            f"prctl(PR_SET_SECCOMP) {_errno_name(by_prctl)}")


def probe() -> dict[str, str]:
    """How this environment answers each step of installing a filter, each tried in a throw-away
    child (a filter, once installed, stays): PR_SET_NO_NEW_PRIVS, seccomp(2), prctl(PR_SET_SECCOMP),
    each "ok" or the errno's name. Every execution's isolation report carries it."""
    import os

    def attempt(step: str) -> str:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            libc = ctypes.CDLL(None, use_errno=True)
            allow = struct.pack("HBBI", BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW)
            buffer = ctypes.create_string_buffer(allow, len(allow))
            fprog = _SockFprog(1, ctypes.addressof(buffer))
            outcome = 0 if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 else ctypes.get_errno() or errno.EPERM
            if step != "no_new_privs" and outcome == 0:
                outcome = _seccomp_syscall(libc, fprog) if step == "seccomp_syscall" else _prctl_seccomp(libc, fprog)
            os.write(write, str(outcome).encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as answer:
            text = answer.read().decode() or str(errno.ECHILD)
        os.waitpid(pid, 0)
        return "ok" if text == "0" else _errno_name(int(text))

    if platform.machine() not in ARCHES:
        return {"no_new_privs": "ENOSYS", "seccomp_syscall": "ENOSYS", "prctl_seccomp": "ENOSYS"}
    return {step: attempt(step) for step in ("no_new_privs", "seccomp_syscall", "prctl_seccomp")}
