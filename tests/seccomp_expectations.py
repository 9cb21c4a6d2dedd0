"""What the seccomp filter must refuse, written down from the security notes (docs/security.md §3),
never read from the product's own table: deleting a rule from sandbox_runner/seccomp.py must
fail a test, not delete one.

For each call the probe (PROBE) picks arguments the kernel itself would answer with something
other than the filter's errno (a bad descriptor, a missing key, a no-op that succeeds...), so
that on the real kernel only the filter can produce the expected answer. The tests run the probe
twice, in a cell and as the same unprivileged uid without any filter, and hold both answers to
this table: the first must be the filter's errno, the second must not be. The few calls the
kernel refuses an unprivileged process itself whatever the arguments (capability checks come
first) are listed apart, in KERNEL_REFUSES_TOO: for them the filter is defence in depth, and no
test on this kernel can tell it from the kernel.
"""

from __future__ import annotations

import errno

EPERM, ENOSYS = errno.EPERM, errno.ENOSYS

# docs/security.md §3, row by row.
REFUSED: dict[str, int] = {
    # reading or writing another process
    **dict.fromkeys(("ptrace", "ptrace_attach_own_child", "process_vm_readv", "process_vm_writev", "kcmp",
                     "pidfd_getfd", "process_madvise", "process_mrelease"), EPERM),
    # kernel objects that outlive the process that made them
    **dict.fromkeys(("shmget", "shmat", "shmdt", "shmctl", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop",
                     "semtimedop", "semctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify",
                     "mq_getsetattr", "add_key", "request_key", "keyctl"), EPERM),
    # kernel attack surface no cell needs
    **dict.fromkeys(("perf_event_open", "bpf", "userfaultfd", "open_by_handle_at", "fanotify_init", "personality"),
                    EPERM),
    "io_uring_setup": ENOSYS, "io_uring_enter": ENOSYS, "io_uring_register": ENOSYS,
    # namespaces and system state
    **dict.fromkeys(("unshare", "setns", "clone_newuser", "mount", "umount2", "pivot_root", "chroot", "fsopen",
                     "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr", "kexec_load", "init_module",
                     "finit_module", "delete_module", "acct", "swapon", "swapoff", "reboot", "syslog", "vhangup",
                     "quotactl"), EPERM),
    "clone3": ENOSYS,
    # a pidfd signals by fd, out of the filter's sight
    "pidfd_open": EPERM, "pidfd_send_signal": EPERM,
    # another process's I/O priority or memory placement
    "ioprio_set": EPERM, "migrate_pages": EPERM,
    # a session of its own is a scheduler autogroup of its own (§6c)
    "setsid_in_a_child": EPERM,
}

# The kernel refuses the sandbox's unprivileged uid these itself (a capability check comes before
# any argument is read), so without the filter they answer EPERM too.
KERNEL_REFUSES_TOO = frozenset({"pivot_root", "fsopen", "fsmount", "fspick", "move_mount", "acct", "swapon",
                                "swapoff", "reboot", "syslog", "vhangup"})

# Run as a cell, or as a plain process: prints {case: errno, or "ok"} as JSON. Syscall numbers are
# read from the kernel's own header (asm/unistd_64.h) where the host has it, else given in NR_JSON.
PROBE = r'''
import ctypes, json, os, re, time
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR = json.loads(NR_JSON)

def call(name, *args):
    ctypes.set_errno(0)
    result = libc.syscall(NR[name], *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
    return ctypes.get_errno() if result == -1 else "ok"

text = lambda value: ctypes.c_char_p(value)
out = {}
buf = ctypes.create_string_buffer(16)
iov = (ctypes.c_void_p * 2)(ctypes.addressof(buf), 16)
me = os.getpid()
out["process_vm_readv"] = call("process_vm_readv", me, iov, 1, iov, 1, 0)
out["process_vm_writev"] = call("process_vm_writev", me, iov, 1, iov, 1, 0)
out["kcmp"] = call("kcmp", me, me, 1, 0, 0)
ctypes.set_errno(0)
pidfd = libc.syscall(NR["pidfd_open"], ctypes.c_long(me), ctypes.c_long(0))
out["pidfd_open"] = ctypes.get_errno() if pidfd == -1 else "ok"
if pidfd >= 0:
    os.close(pidfd)
CASES = [("pidfd_send_signal", (-1, 0, 0, 0)), ("pidfd_getfd", (-1, 0, 0)), ("process_madvise", (-1, 0, 0, 0, 0)),
    ("process_mrelease", (-1, 0)), ("shmget", (0x5EED0001, 0, 0)), ("shmat", (-1, 0, 0)), ("shmdt", (0,)),
    ("shmctl", (-1, 2, 0)), ("msgget", (0x5EED0001, 0)), ("msgsnd", (-1, 0, 0, 0)), ("msgrcv", (-1, 0, 0, 0, 0)),
    ("msgctl", (-1, 2, 0)), ("semget", (0x5EED0001, 0, 0)), ("semop", (-1, 0, 0)), ("semtimedop", (-1, 0, 0, 0)),
    ("semctl", (-1, 0, 2, 0)), ("mq_open", (text(b"no-such-queue"), 0, 0, 0)), ("mq_unlink", (text(b"no-such-queue"),)),
    ("mq_timedsend", (-1, 0, 0, 0, 0)), ("mq_timedreceive", (-1, 0, 0, 0, 0)), ("mq_notify", (-1, 0)),
    ("mq_getsetattr", (-1, 0, 0)), ("add_key", (text(b"no-such-type"), text(b"d"), 0, 0, -2)),
    ("request_key", (text(b"no-such-type"), text(b"d"), 0, 0)), ("keyctl", (0xFFFF, 0, 0, 0, 0)),
    ("perf_event_open", (0, 0, -1, -1, 0)), ("bpf", (0xFFFF, 0, 0)), ("userfaultfd", (3,)),
    ("open_by_handle_at", (-1, 0, 0)), ("fanotify_init", (0x1200, 0)), ("personality", (0xFFFFFFFF,)),
    ("unshare", (0,)), ("setns", (-1, 0)), ("mount", (0, 0, 0, 0, 0)), ("umount2", (text(b"/no-such-dir"), 0)),
    ("pivot_root", (text(b"/no-such-dir"), text(b"/no-such-dir"))), ("chroot", (text(b"/no-such-dir"),)),
    ("fsopen", (0, 0)), ("fsmount", (-1, 0, 0)), ("fspick", (-1, 0, 0)), ("move_mount", (-1, 0, -1, 0, 0)),
    ("open_tree", (-1, 0, 0)), ("mount_setattr", (-1, 0, 0, 0, 0)), ("kexec_load", (0, 0, 0, 0)),
    ("init_module", (0, 0, 0)), ("finit_module", (-1, 0, 0)), ("delete_module", (0, 0)), ("acct", (0,)),
    ("swapon", (0, 0)), ("swapoff", (0,)), ("reboot", (0, 0, 0, 0)), ("syslog", (10, 0, 0)), ("vhangup", ()),
    ("quotactl", (0, 0, 0, 0)), ("ioprio_set", (1, 0, 0xFFFFFFFF)), ("migrate_pages", (0, 0, 0, 0)),
    ("io_uring_setup", (0, 0)), ("io_uring_enter", (-1, 0, 0, 0, 0, 0)), ("io_uring_register", (-1, 0, 0, 0)),
    ("clone3", (0, 0)), ("ptrace", (0xFFFF, 0, 0, 0))]
for name, args in CASES:
    out[name] = call(name, *args)
ctypes.set_errno(0)  # CLONE_NEWUSER with CLONE_FS: the kernel refuses the pair (EINVAL) before anything
out["clone_newuser"] = call("clone", 0x10000000 | 0x200, 0, 0, 0, 0)

# A target only the filter can protect: the cell's own child, both made dumpable again.
libc.prctl(4, 1, 0, 0, 0)
ready, go = os.pipe()
child = os.fork()
if child == 0:
    libc.prctl(4, 1, 0, 0, 0)
    try:
        os.setsid()
        refused = 0
    except OSError as exc:
        refused = exc.errno
    os.write(go, bytes([refused]))
    time.sleep(30)
    os._exit(0)
out["setsid_in_a_child"] = os.read(ready, 1)[0] or "ok"
out["ptrace_attach_own_child"] = call("ptrace", 16, child, 0, 0)
os.kill(child, 9)
os.waitpid(child, 0)
print(json.dumps(out))
'''


def syscall_numbers() -> dict[str, int]:
    """This machine's syscall numbers, from the kernel headers (the product's table is the thing
    under test, so it is only the fallback where the headers are not installed)."""
    import platform
    import re
    from pathlib import Path

    headers = {"x86_64": "/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "aarch64": "/usr/include/asm-generic/unistd.h"}
    header = Path(headers.get(platform.machine(), ""))
    if header.is_file():
        return {m.group(1): int(m.group(2)) for m in re.finditer(r"#define __NR(?:3264)?_(\w+)\s+(\d+)", header.read_text())}
    from sandbox_runner import seccomp

    return dict(seccomp.ARCHES[platform.machine()].nr)


def probe_code() -> str:
    import json

    return f"NR_JSON = {json.dumps(json.dumps(syscall_numbers()))}\n" + PROBE


def check(in_cell: dict[str, object], unfiltered: dict[str, object]) -> list[str]:
    """What does not hold: each call refused in the cell with the filter's errno, and (where the
    kernel would not refuse it itself) answered otherwise without the filter."""
    problems = []
    for name, expected in REFUSED.items():
        if in_cell.get(name) != expected:
            problems.append(f"{name}: {in_cell.get(name)!r} in the cell, the filter's errno is {expected}")
        kernel_too = unfiltered.get(name) == expected
        if kernel_too != (name in KERNEL_REFUSES_TOO):
            problems.append(f"{name}: without the filter it answers {unfiltered.get(name)!r}; the table says the "
                            f"kernel {'does' if name in KERNEL_REFUSES_TOO else 'does not'} refuse it too")
    return problems
