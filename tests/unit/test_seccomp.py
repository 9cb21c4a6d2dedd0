"""The seccomp filter's decisions, rule by rule, on both architectures the image can run on.

The program is run here through a small classic-BPF interpreter, so every rule is checked for
x86_64 and aarch64 whatever this machine is; tests/sandbox/test_tenant_isolation.py tries the
same attacks for real on this machine's kernel.
"""

from __future__ import annotations

import errno
import re
import struct
from pathlib import Path

import pytest

from sandbox_runner import seccomp
from tests.seccomp_expectations import REFUSED

ALLOW, KILL = seccomp.SECCOMP_RET_ALLOW, seccomp.SECCOMP_RET_KILL_PROCESS
HEADERS = {"x86_64": Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"), "aarch64": Path("/usr/include/asm-generic/unistd.h")}


def refused(number: int) -> int:
    return seccomp.SECCOMP_RET_ERRNO | number


def evaluate(program: bytes, nr: int, args: tuple[int, ...] = (), arch: int | None = None, machine: str = "x86_64") -> int:
    """Run a classic BPF seccomp program on one system call, as the kernel would."""
    audit = seccomp.ARCHES[machine].audit if arch is None else arch
    full = (list(args) + [0] * 6)[:6]
    data = struct.pack("<iIQ6Q", nr, audit, 0, *[a & 0xFFFFFFFFFFFFFFFF for a in full])
    instructions = [struct.unpack("HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    accumulator, pc = 0, 0
    while True:
        code, jt, jf, k = instructions[pc]
        if code == seccomp.BPF_LD_W_ABS:
            accumulator = struct.unpack_from("<I", data, k)[0]
        elif code == seccomp.BPF_RET_K:
            return k
        elif code == seccomp.BPF_JA:
            pc += k
        elif code in (seccomp.BPF_JEQ_K, seccomp.BPF_JGE_K, seccomp.BPF_JSET_K):
            taken = {seccomp.BPF_JEQ_K: accumulator == k, seccomp.BPF_JGE_K: accumulator >= k,
                     seccomp.BPF_JSET_K: bool(accumulator & k)}[code]
            pc += jt if taken else jf
        else:
            raise AssertionError(f"unknown opcode {code:#x}")
        pc += 1


MACHINES = ["x86_64", "aarch64"]


@pytest.mark.parametrize("machine", MACHINES)
def test_syscall_numbers_match_the_kernel_headers(machine: str) -> None:
    header = HEADERS[machine]
    if not header.exists():
        pytest.skip(f"{header} is not installed")
    text = header.read_text()
    for name, number in seccomp.ARCHES[machine].nr.items():
        found = re.search(rf"#define __NR(?:3264)?_{name}\s+(\d+)", text)
        assert found and int(found.group(1)) == number, name


@pytest.mark.parametrize("machine", MACHINES)
def test_foreign_abis_are_refused(machine: str) -> None:
    program = seccomp.build_filter(machine=machine)
    assert evaluate(program, 0, arch=0x40000003, machine=machine) == KILL  # i386
    socket_nr = seccomp.ARCHES[machine].nr["socket"]
    assert evaluate(program, socket_nr | seccomp.X32_SYSCALL_BIT, (2, 1), machine=machine) == refused(errno.ENOSYS)


@pytest.mark.parametrize("machine", MACHINES)
def test_only_unix_sockets(machine: str) -> None:
    program = seccomp.build_filter(machine=machine)
    nr = seccomp.ARCHES[machine].nr
    for name in ("socket", "socketpair"):
        assert evaluate(program, nr[name], (1, 1), machine=machine) == ALLOW
        for family in (2, 10, 16, 17, 38, 40, 44, 0x100000001):  # INET, INET6, NETLINK, PACKET, ALG, VSOCK, XDP; high bits
            expected = ALLOW if family & 0xFFFFFFFF == 1 else refused(errno.EACCES)
            assert evaluate(program, nr[name], (family, 1), machine=machine) == expected, family


# The calls the security notes list, from tests/seccomp_expectations.py (written from the notes,
# not read from seccomp.DENIED: deleting a rule there must fail this test, not remove a case).
CALLS = {"ptrace_attach_own_child": "ptrace", "setsid_in_a_child": "setsid"}
REFUSED_CALLS = sorted({(CALLS.get(case, case), number) for case, number in REFUSED.items() if case != "clone_newuser"})


@pytest.mark.parametrize("machine", MACHINES)
@pytest.mark.parametrize("name,number", REFUSED_CALLS)
def test_calls_no_cell_needs_are_refused(machine: str, number: int, name: str) -> None:
    program = seccomp.build_filter(machine=machine)
    assert evaluate(program, seccomp.ARCHES[machine].nr[name], (0, 0), machine=machine) == refused(number)


@pytest.mark.parametrize("machine", MACHINES)
def test_namespaces_through_clone_are_refused(machine: str) -> None:
    program = seccomp.build_filter(machine=machine)
    clone = seccomp.ARCHES[machine].nr["clone"]
    assert evaluate(program, clone, (0x01200011,), machine=machine) == ALLOW  # what fork() passes
    assert evaluate(program, clone, (0x003D0F00,), machine=machine) == ALLOW  # what pthread_create passes
    for flag in (0x10000000, 0x40000000, 0x08000000, 0x00020000):  # NEWUSER, NEWNET, NEWIPC, NEWNS
        assert evaluate(program, clone, (0x01200011 | flag,), machine=machine) == refused(errno.EPERM)


PROTECTED, GROUPS = {1, 7, 8, 9}, {1, 7}


@pytest.mark.parametrize("machine", MACHINES)
def test_processes_that_outlive_the_execution_are_out_of_reach(machine: str) -> None:
    program = seccomp.build_filter(PROTECTED, GROUPS, machine=machine)
    nr = seccomp.ARCHES[machine].nr
    own, own_group = 4242, 0
    for name, args in seccomp.PID_ARGUMENTS.items():
        for position in args:
            call = [0, 0, 0]
            if name == "setpriority":
                call[0] = 0  # PRIO_PROCESS
            for target in PROTECTED:
                call[position] = target
                assert evaluate(program, nr[name], tuple(call), machine=machine) == refused(errno.EPERM), (name, target)
            call[position] = own
            assert evaluate(program, nr[name], tuple(call), machine=machine) == ALLOW, name
    kill = nr["kill"]
    for target in (-1, -7, -1 & 0xFFFFFFFF, (1 << 32) | 7):  # every process, a protected group, high bits ignored
        assert evaluate(program, kill, (target, 19), machine=machine) == refused(errno.EPERM), target
    assert evaluate(program, kill, (own_group, 9), machine=machine) == ALLOW  # its own group
    assert evaluate(program, kill, (-own, 9), machine=machine) == ALLOW
    assert evaluate(program, nr["setpriority"], (seccomp.PRIO_USER, 0, 19), machine=machine) == refused(errno.EPERM)


@pytest.mark.parametrize("machine", MACHINES)
def test_sigio_cannot_be_routed_to_another_process(machine: str) -> None:
    program = seccomp.build_filter(machine=machine)
    nr = seccomp.ARCHES[machine].nr
    for cmd in (seccomp.F_SETOWN, seccomp.F_SETSIG, seccomp.F_SETOWN_EX):
        assert evaluate(program, nr["fcntl"], (3, cmd, 1), machine=machine) == refused(errno.EPERM)
    assert evaluate(program, nr["fcntl"], (3, 4, 0), machine=machine) == ALLOW  # F_SETFL
    for cmd in (seccomp.FIOSETOWN, seccomp.SIOCSPGRP, seccomp.TIOCSPGRP, seccomp.TIOCSTI):
        assert evaluate(program, nr["ioctl"], (3, cmd, 0), machine=machine) == refused(errno.EPERM)
    assert evaluate(program, nr["ioctl"], (3, 0x5401, 0), machine=machine) == ALLOW  # TCGETS


@pytest.mark.parametrize("machine", MACHINES)
def test_everything_else_is_allowed(machine: str) -> None:
    program = seccomp.build_filter(PROTECTED, GROUPS, machine=machine)
    denied = set(seccomp.ARCHES[machine].nr.values())
    for nr in range(0, 460):
        if nr not in denied:
            assert evaluate(program, nr, (1, 2, 3), machine=machine) == ALLOW, nr


def test_too_many_processes_to_protect_is_an_error_not_a_weaker_filter() -> None:
    with pytest.raises(OSError, match="too many"):
        seccomp.build_filter(set(range(2, 2 + seccomp.MAX_PROTECTED_IDS + 1)), machine="x86_64")
    program = seccomp.build_filter(set(range(2, seccomp.MAX_PROTECTED_IDS)), machine="x86_64")
    assert len(program) // 8 < 4096  # the kernel's limit for one filter
