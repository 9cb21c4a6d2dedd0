"""A tiny seccomp-BPF filter, installed in the child before user code runs.

It refuses new AF_INET/AF_INET6/AF_PACKET/AF_NETLINK sockets and io_uring (which can open sockets
behind the filter's back). Network namespaces already cut the network locally; in Lambda the
filter is what keeps user code away from the unauthenticated Runtime API on loopback. Built by
hand with ctypes so the image needs no libseccomp.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_KILL_PROCESS = 0x80000000

# BPF opcodes
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_RET_K = 0x06

AF_INET, AF_PACKET, AF_NETLINK, AF_INET6 = 2, 17, 16, 10
DENIED_FAMILIES = (AF_INET, AF_INET6, AF_PACKET, AF_NETLINK)

# (audit arch, socket nr, io_uring_setup nr)
_ARCHES = {
    "x86_64": (0xC000003E, 41, 425),
    "aarch64": (0xC00000B7, 198, 425),
}
# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]
_OFF_NR, _OFF_ARCH, _OFF_ARG0 = 0, 4, 16


def _stmt(code: int, k: int) -> bytes:
    return struct.pack("HBBI", code, 0, 0, k)


def _jump(code: int, k: int, jt: int, jf: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def build_filter(machine: str | None = None) -> bytes:
    arch, nr_socket, nr_io_uring = _ARCHES[machine or platform.machine()]
    deny = SECCOMP_RET_ERRNO | errno.EACCES
    prog = [
        _stmt(BPF_LD_W_ABS, _OFF_ARCH),
        _jump(BPF_JEQ_K, arch, 1, 0),
        _stmt(BPF_RET_K, SECCOMP_RET_KILL_PROCESS),  # a foreign ABI (x32, i386) could dodge the rules
        _stmt(BPF_LD_W_ABS, _OFF_NR),
        _jump(BPF_JEQ_K, nr_io_uring, 0, 1),
        _stmt(BPF_RET_K, deny),
        _jump(BPF_JEQ_K, nr_socket, 1, 0),
        _stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
        _stmt(BPF_LD_W_ABS, _OFF_ARG0),
    ]
    for index, family in enumerate(DENIED_FAMILIES):
        remaining = len(DENIED_FAMILIES) - index - 1
        # match: jump over the remaining compares and the allow, to the deny
        prog.append(_jump(BPF_JEQ_K, family, remaining + 1, 0))
    prog.append(_stmt(BPF_RET_K, SECCOMP_RET_ALLOW))
    prog.append(_stmt(BPF_RET_K, deny))
    return b"".join(prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install() -> None:
    """Install the filter in the calling process (irreversible; inherited by its children)."""
    if platform.machine() not in _ARCHES:
        raise OSError(errno.ENOSYS, f"no seccomp filter for {platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    program = build_filter()
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.addressof(buffer))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "seccomp filter refused")
