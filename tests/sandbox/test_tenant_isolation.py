"""Tenant isolation by construction (issue 11): one tenant's cell can neither reach, slow nor break
another tenant's execution on the same warm sandbox.

Each test runs on the session's single worker, as an attacker with two keys would: the attacker's
cells first, then the victim's. The victim must see nothing of the attacker's and run in its
normal time; the attacker must get a refusal (the errno the filter gives) or a clean sandbox.
The filter's rules themselves are checked one by one in tests/unit/test_seccomp.py.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from agentsapi.adapters.local_sandbox import NOBODY
from agentsapi.errors import ServiceUnavailable
from agentsapi.sandbox.port import ExecutionRequest, SandboxFile
from sandbox_runner import seccomp
from tests.handshake import announce, marker, wait_for_cells
from tests.sandbox.hostile import DEADLINE_MARGIN_S, ZYGOTE_START_S, assert_clean_slate, run

NR = seccomp.ARCHES[platform.machine()].nr
VICTIM = "print(sum(range(10)))"


# The victim's normal time, measured at the start of each test, before the attacker's cells: a
# threshold relative to it holds on a loaded machine as well as on an idle one.
NORMAL: dict[str, float] = {}


@pytest.fixture(autouse=True)
def clean_afterwards(sandbox: Any) -> Any:
    NORMAL["victim"] = min(run(sandbox, VICTIM)[1] for _ in range(3))
    yield
    assert_clean_slate(sandbox)


def victim_runs_normally(sandbox: Any) -> None:
    result, elapsed = run(sandbox, VICTIM)
    assert result.status == "ok" and result.code_output() == "45\n", result.code_output()
    normal = NORMAL["victim"]
    assert elapsed < 3 * normal + 0.3, f"the victim took {elapsed:.2f} s, {normal:.2f} s before the attack"


def json_output(result: Any) -> Any:
    return json.loads(result.outputs[0].text)


# -- user code shares no ptrace, signal, rlimit or IPC domain with what outlives it ----------------

OTHERS = r"""
import os
def ppid(pid):
    with open(f"/proc/{pid}/stat") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[1])
mine = {os.getpid()}
others = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in mine]
"""


# Reads another process's memory where it is mapped (offset 0 is never mapped: a read there fails
# with EIO even on one's own process, so it cannot tell a refusal from nothing). The target's own
# maps are refused with it; the cell's own maps serve then, as the zygote's children share its
# layout. The cell's own memory is read the same way first, so the probe is known to work.
MEMORY_PROBE = r"""
def regions(pid):
    try:
        lines = open(f"/proc/{pid}/maps").read().splitlines()
    except OSError:
        lines = open("/proc/self/maps").read().splitlines()
    found = []
    for line in lines:
        fields = line.split()
        if "r" in fields[1] and not line.endswith(("[vsyscall]", "[vvar]", "[vdso]")):
            start, end = (int(x, 16) for x in fields[0].split("-"))
            found.append(start)
    return found[:40]

def read_memory(pid, mode="rb"):
    try:
        handle = open(f"/proc/{pid}/mem", mode, buffering=0)
    except OSError as exc:
        return exc.errno
    with handle:
        for address in regions(pid):
            try:
                handle.seek(address)
                if handle.read(1):
                    return "read"
            except (OSError, OverflowError, ValueError):
                continue
    return "nothing readable"
"""


def test_processes_that_outlive_the_execution_cannot_be_traced_or_written(sandbox: Any) -> None:
    code = OTHERS + MEMORY_PROBE + rf"""
import ctypes, json
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(4, 1, 0, 0, 0)  # the cell makes itself dumpable: its own memory reads, as it may
seen = {{"self": read_memory("self")}}
for pid in others:
    outcome = {{}}
    outcome["ptrace"] = ctypes.get_errno() if libc.syscall({NR['ptrace']}, 16, pid, 0, 0) == -1 else "attached"
    outcome["mem"] = read_memory(pid)
    outcome["mem_write"] = read_memory(pid, "r+b")
    try:
        open(f"/proc/{{pid}}/environ", "rb").read(1)
        outcome["environ"] = "opened"
    except OSError as exc:
        outcome["environ"] = exc.errno
    outcome["cmd"] = open(f"/proc/{{pid}}/cmdline", "rb").read()[:200].decode(errors="replace")
    seen[pid] = outcome
print(json.dumps(seen))
"""
    result, _ = run(sandbox, code)
    seen = json_output(result)
    assert seen.pop("self") == "read", "the probe cannot read even the cell's own memory: it would prove nothing"
    assert "sandbox_runner.worker" in seen["1"]["cmd"], seen  # pid 1 is the runner, not bubblewrap's init
    for pid, outcome in seen.items():
        assert outcome["ptrace"] == 1, (pid, outcome)  # EPERM from the filter
        assert "read" not in (outcome["mem"], outcome["mem_write"]), (pid, outcome)
        assert outcome["environ"] != "opened", (pid, outcome)
    victim_runs_normally(sandbox)


def test_sysv_ipc_message_queues_and_keyrings_are_refused(sandbox: Any) -> None:
    attacker = rf"""
import ctypes, json
libc = ctypes.CDLL(None, use_errno=True)
def call(nr, *args):
    return ctypes.get_errno() if libc.syscall(nr, *args) == -1 else "created"
secret = ctypes.c_char_p(b"tenant-a-secret")
print(json.dumps({{
    "shm": call({NR['shmget']}, 0x1234, 4096, 0o1666),
    "msg": call({NR['msgget']}, 0x1234, 0o1666),
    "sem": call({NR['semget']}, 0x1234, 1, 0o1666),
    "mq": call({NR['mq_open']}, ctypes.c_char_p(b"leak"), 0o102, 0o666, 0),
    "key": call({NR['add_key']}, ctypes.c_char_p(b"user"), ctypes.c_char_p(b"leak"), secret, 15, -4),
}}))
"""
    result, _ = run(sandbox, attacker)
    assert json_output(result) == {"shm": 1, "msg": 1, "sem": 1, "mq": 1, "key": 1}
    victim = r"""
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
tables = {name: open(f"/proc/sysvipc/{name}").read().splitlines()[1:] for name in ("shm", "msg", "sem")
          if os.path.exists(f"/proc/sysvipc/{name}")}
print(json.dumps({"tables": tables, "keys": open("/proc/keys").read() if os.path.exists("/proc/keys") else ""}))
"""
    result, _ = run(sandbox, victim)
    seen = json_output(result)
    assert all(rows == [] for rows in seen["tables"].values()), seen
    assert "leak" not in seen["keys"]
    victim_runs_normally(sandbox)


ATTACKS_ON_OTHERS = OTHERS + rf"""
import ctypes, fcntl, json, resource, signal
libc = ctypes.CDLL(None, use_errno=True)
zygote = os.getppid()
def attempt(action):
    try:
        action()
        return "done"
    except OSError as exc:
        return exc.errno
def raw(nr, *args):
    def call():
        if libc.syscall(nr, *args) == -1:
            raise OSError(ctypes.get_errno(), "refused")
    return call
outcomes = {{}}
for pid in others:
    outcomes[f"SIGSTOP {{pid}}"] = attempt(lambda: os.kill(pid, signal.SIGSTOP))
    outcomes[f"tgkill {{pid}}"] = attempt(raw({NR['tgkill']}, pid, pid, signal.SIGSTOP))
    outcomes[f"prlimit {{pid}}"] = attempt(lambda: resource.prlimit(pid, resource.RLIMIT_NPROC, (1, 1)))
    outcomes[f"setpriority {{pid}}"] = attempt(lambda: os.setpriority(os.PRIO_PROCESS, pid, 19))
    outcomes[f"affinity {{pid}}"] = attempt(lambda: os.sched_setaffinity(pid, {{0}}))
    outcomes[f"killpg {{pid}}"] = attempt(lambda: os.killpg(os.getpgid(pid), signal.SIGSTOP))
outcomes["kill -1"] = attempt(lambda: os.kill(-1, signal.SIGSTOP))
outcomes["PRIO_USER"] = attempt(lambda: os.setpriority(os.PRIO_USER, 0, 19))
read_end, write_end = os.pipe()
outcomes["F_SETOWN"] = attempt(lambda: fcntl.fcntl(read_end, fcntl.F_SETOWN, zygote))
outcomes["F_SETSIG"] = attempt(lambda: fcntl.fcntl(read_end, 10, signal.SIGSTOP))
# the execution's own processes stay under its control
import subprocess
child = subprocess.Popen(["sleep", "30"])
child.send_signal(signal.SIGSTOP); child.send_signal(signal.SIGCONT)
os.setpriority(os.PRIO_PROCESS, child.pid, 5)
resource.prlimit(child.pid, resource.RLIMIT_NOFILE, (64, 64))
child.kill()
own = child.wait()
print(json.dumps({{"others": others, "zygote": zygote, "outcomes": outcomes, "own": own}}))
"""


def test_signals_limits_priority_and_affinity_of_other_processes_are_refused(sandbox: Any) -> None:
    result, _ = run(sandbox, ATTACKS_ON_OTHERS)
    seen = json_output(result)
    assert seen["zygote"] in seen["others"] and 1 in seen["others"]
    refused = {name: errno for name, errno in seen["outcomes"].items() if errno != 1}
    assert refused == {}, f"not refused with EPERM: {refused}"
    assert seen["own"] == -signal.SIGKILL
    victim_runs_normally(sandbox)


def test_seccomp_allows_only_unix_sockets_and_the_native_abi(sandbox: Any) -> None:
    code = rf"""
import ctypes, json, socket
libc = ctypes.CDLL(None, use_errno=True)
families = {{}}
for family in range(1, 46):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW):
        if libc.syscall({NR['socket']}, family, kind, 0) == -1:
            families.setdefault(family, set()).add(ctypes.get_errno())
        else:
            families.setdefault(family, set()).add("created")
x32 = libc.syscall({NR['socket']} | 0x40000000, socket.AF_INET, socket.SOCK_STREAM, 0)
print(json.dumps({{"families": {{f: sorted(map(str, e)) for f, e in families.items()}},
                  "x32": [x32, ctypes.get_errno()], "vsock": families.get(40) and sorted(map(str, families[40]))}}))
"""
    result, _ = run(sandbox, code)
    seen = json_output(result)
    assert "created" in seen["families"]["1"]  # AF_UNIX works
    others = {family: errnos for family, errnos in seen["families"].items() if family != "1"}
    assert all(errnos == ["13"] for errnos in others.values()), others  # EACCES from the filter, for every family
    assert seen["vsock"] == ["13"]
    assert seen["x32"] == [-1, 38]  # ENOSYS: an x32 call never reaches the kernel
    victim_runs_normally(sandbox)


# -- one cell cannot break the sandbox for those after it ----------------------------------------

def test_left_behind_directories_of_any_shape_are_wiped(sandbox: Any) -> None:
    attacker = r"""
import os
for base in ("/tmp", "."):
    os.makedirs(f"{base}/locked/inner", exist_ok=True)
    open(f"{base}/locked/inner/secret", "w").write("tenant-a-secret")
    os.chmod(f"{base}/locked/inner", 0)
    os.chmod(f"{base}/locked", 0)
    path = f"{base}/deep"
    os.mkdir(path)
    fd = os.open(path, os.O_RDONLY)
    for _ in range(1500):
        os.mkdir("d", dir_fd=fd)
        next_fd = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = next_fd
    os.close(fd)
    os.mkdir(os.path.join(os.fsencode(base), b"\xff\xfe-not-utf8"))
    os.symlink("/", f"{base}/root-link")
    os.mkfifo(f"{base}/fifo")
os.rename("/tmp/sbx", "/tmp/moved")
os.symlink("/usr", "/tmp/sbx")
os.chmod("/tmp", 0)
print("left")
"""
    result, _ = run(sandbox, attacker, timeout_s=8)
    assert result.status == "ok", result.code_output()
    victim = r"""
import os
for i in range(12):  # 180 MB of the work area's 256: nothing the attacker left takes room
    with open(f"part{i}", "wb") as handle:
        handle.write(b"0" * (15 * 1024 * 1024))
    os.unlink(f"part{i}")
print(sorted(os.listdir("/tmp")))
"""
    result, _ = run(sandbox, victim, timeout_s=8)
    assert result.status == "ok" and result.code_output() == "['sbx', 'xchg']\n", result.code_output()
    victim_runs_normally(sandbox)


def host_processes_of(worker_pid: int) -> dict[int, str]:
    """Descendants of a worker on the host (the test runs outside the sandbox), with their command lines."""
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                parents[int(name)] = int(Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = {}, {worker_pid}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier}
        for pid in frontier:
            try:
                found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
    return found


def zygote_of(sandbox: Any) -> int:
    """The zygote's pid on the host (its spare runs the same command line, as its child)."""
    [worker] = list(sandbox._all)
    processes = host_processes_of(worker.process.pid)
    zygotes = {pid for pid, cmd in processes.items() if "sandbox_runner.zygote" in cmd}
    [pid] = [pid for pid in zygotes if _parent(pid) not in zygotes]
    return pid


def as_sandbox_uid(action: Callable[[], object]) -> None:
    """Do it from a process of the sandbox's uid on the host: what a same-uid cell could do
    if the filter let it."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            action()
            code = 0
        finally:
            os._exit(code)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.parametrize("tamper", ["stop", "renice", "nproc", "affinity", "kill"])
def test_a_tampered_zygote_is_replaced_before_the_next_caller(sandbox: Any, tamper: str) -> None:
    """Defence in depth behind the filter: the zygote is tampered with from outside (as root on
    the host), and the next execution still runs normally, on a new zygote."""
    run(sandbox, "print('warm')")
    zygote = zygote_of(sandbox)
    as_sandbox_uid({
        "stop": lambda: os.kill(zygote, signal.SIGSTOP),
        "renice": lambda: os.setpriority(os.PRIO_PROCESS, zygote, 19),
        "nproc": lambda: resource.prlimit(zygote, resource.RLIMIT_NPROC, (1, 1)),
        "affinity": lambda: os.sched_setaffinity(zygote, {0}),
        "kill": lambda: os.kill(zygote, signal.SIGKILL),
    }[tamper])
    # The victim's run starts the new zygote first: its bound includes that start, not a hang.
    result, elapsed = run(sandbox, VICTIM, margin_s=DEADLINE_MARGIN_S + ZYGOTE_START_S)
    assert result.status == "ok" and result.code_output() == "45\n", result.code_output()
    assert zygote_of(sandbox) != zygote


# -- what a tenant's cell may find in memory or frames ----------------------------------------------

def _readable_memory(pid: int) -> bytes:
    chunks = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            span, perms = line.split()[:2]
            if not perms.startswith("r"):
                continue
            start, end = (int(x, 16) for x in span.split("-"))
            try:
                mem.seek(start)
                chunks.append(mem.read(end - start))
            except (OSError, ValueError, OverflowError):
                continue
    return b"".join(chunks)


def test_the_zygote_never_holds_a_tenants_code(sandbox: Any) -> None:
    """Every later child is a fork of the zygote: what it ever held, any later tenant can scan for
    in its own memory. Code, environment and session state go to the child in a file."""
    marker = f"victim-secret-{os.urandom(6).hex()}"
    run(sandbox, f"secret = {marker!r}\nprint(len(secret))")
    time.sleep(0.3)  # the next spare is forked off the critical path
    worker = next(iter(sandbox._all))
    processes = host_processes_of(worker.process.pid)
    zygotes = [pid for pid, cmd in processes.items() if "sandbox_runner.zygote" in cmd]
    assert zygotes
    for pid in [pid for pid in processes if pid not in (worker.process.pid,)]:
        cmd = processes[pid]
        if "sandbox_runner.worker" in cmd or "bwrap" in cmd or "setpriv" in cmd:
            continue  # the runner held it (non-dumpable, never forked from)
        assert marker.encode() not in _readable_memory(pid), f"found in {pid}: {cmd}"


def test_the_raw_session_blob_is_gone_before_user_code_runs(sandbox: Any) -> None:
    first = sandbox.execute(ExecutionRequest(code="kept = 'tenant-state-' + 'x' * 50", carry_session=True))
    assert first.status == "ok" and first.session is not None
    hunt = r"""
import gc, sys
leaks = []
frame = sys._getframe()
while frame is not None:
    for value in list(frame.f_locals.values()):
        if isinstance(value, (bytes, bytearray)) and b"tenant-state-" in value:
            leaks.append(frame.f_code.co_name)
    frame = frame.f_back
for value in gc.get_objects():
    if isinstance(value, bytearray) and b"tenant-state-" in value:
        leaks.append("heap")
print(leaks, kept[:13])
del value, frame
"""
    second = sandbox.execute(ExecutionRequest(code=hunt, carry_session=True, session_state=first.session.content()))
    assert second.code_output() == "[] tenant-state-\n", second.code_output()


# -- bounded work ---------------------------------------------------------------------------------

def test_an_input_name_too_long_in_bytes_is_refused_and_the_worker_lives_on(sandbox: Any) -> None:
    worker = next(iter(sandbox._all))
    name = "é" * 200  # 200 characters, 400 bytes: over NAME_MAX
    result, _ = run(sandbox, "print(1)", files=[SandboxFile(name=name, content_b64="eA==")])
    assert result.status == "error" and "255 bytes" in result.code_output()
    assert next(iter(sandbox._all)) is worker and worker.alive()
    victim_runs_normally(sandbox)


def test_output_names_that_are_not_utf8_are_renamed_with_a_note(sandbox: Any) -> None:
    result, _ = run(sandbox, "open(b'\\xff\\xfedata.csv', 'w').write('a,b')\nopen('fine.txt', 'w').write('x')")
    assert result.status == "ok", result.code_output()
    names = sorted(f.name for f in result.files)
    assert names == ["__data.csv", "fine.txt"]
    assert "renamed to '__data.csv'" in result.code_output()


def test_waiting_for_a_busy_worker_has_a_deadline(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "config", replace(sandbox.config, wait_s=0.5))
    running = marker()
    busy = threading.Thread(target=sandbox.execute,
                            args=(ExecutionRequest(code=announce(running) + "import time; time.sleep(2)", timeout_s=5),))
    busy.start()
    wait_for_cells(running)  # the only worker is busy now
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as refused:
        sandbox.execute(ExecutionRequest(code="print(1)"))
    assert time.monotonic() - started < 1.5
    assert refused.value.status == 503 and refused.value.headers == {"Retry-After": "2"}
    busy.join()


def test_a_worker_that_dies_frees_its_slot_for_those_waiting(sandbox: Any) -> None:
    results: list[Any] = []
    running = marker()
    busy = threading.Thread(target=lambda: results.append(sandbox.execute(
        ExecutionRequest(code=announce(running) + "import time; time.sleep(5)", timeout_s=8))))
    busy.start()
    wait_for_cells(running)  # the only worker is busy
    waiting = threading.Thread(target=lambda: results.append(sandbox.execute(ExecutionRequest(code="print('waited')"))))
    waiting.start()
    deadline = time.monotonic() + 10
    while not sandbox._cond._waiters:  # the second request waits for the worker now
        assert time.monotonic() < deadline, "the second request never waited"
        time.sleep(0.01)
    [worker] = list(sandbox._all)
    os.killpg(worker.process.pid, signal.SIGKILL)  # the worker dies under the first request
    busy.join(15)
    waiting.join(15)
    assert not waiting.is_alive(), "the waiting request never got a worker"
    statuses = sorted(r.status for r in results)
    assert statuses == ["crashed", "ok"], [r.code_output() for r in results]


NON_ROOT_POOL = r"""
import json, sys
sys.path.insert(0, sys.argv[1] + "/layers")
from agentsapi.adapters.local_sandbox import LocalSandbox, LocalSandboxConfig
from agentsapi.sandbox.port import ExecutionRequest
pool = LocalSandbox(LocalSandboxConfig(python=sys.argv[2], runner_dir=sys.argv[1] + "/sandbox_image", workers=1))
try:
    hello = pool.warm_up()
    attack = pool.execute(ExecutionRequest(code=sys.argv[3]))
    victim = pool.execute(ExecutionRequest(code="print(sum(range(10)))"))
    print(json.dumps({"isolation": hello["isolation"], "attack": attack.code_output(), "victim": victim.code_output()}))
finally:
    pool.close()
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="this run is already not root: the other tests cover it")
def test_a_non_root_make_serve_gets_the_same_isolation() -> None:
    """Without root there is no setpriv and no host tmpfs: bubblewrap runs as the caller's uid.
    The filter, pid 1 and the refusals must be the same."""
    import subprocess
    import sys

    from tests.conftest import ROOT, SANDBOX_PYTHON

    completed = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable, "-c", NON_ROOT_POOL,
         str(ROOT), SANDBOX_PYTHON, ATTACKS_ON_OTHERS],
        capture_output=True, text=True, timeout=120, cwd="/", env={"PATH": os.environ["PATH"], "HOME": "/tmp"})
    assert completed.returncode == 0, completed.stderr[-2000:]
    seen = json.loads(completed.stdout.strip().splitlines()[-1])
    assert seen["isolation"]["seccomp"] is True and seen["isolation"]["uid"] == NOBODY
    outcomes = json.loads(seen["attack"])
    assert {name: e for name, e in outcomes["outcomes"].items() if e != 1} == {}
    assert seen["victim"] == "45\n"
