"""Found by a hostile review of the tenant-isolation work, each closed since (but the last, a
known gap marked as such): /dev and /proc/sys writable by a cell, result frames forged by user
code, a resetting worker handed to the next caller, memory per process rather than per execution.

Each test is an attacker with two keys on one local worker: the attacker's cells first, then the
victim's. Every test gets its own pool (several of these attacks broke the worker for whoever
came next).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentsapi.sandbox.port import ExecutionRequest

ROOT = Path(__file__).resolve().parent.parent.parent
SANDBOX_PYTHON = os.environ.get("SANDBOX_PYTHON", "/opt/agents-sandbox/venv/bin/python")
VICTIM = "print(sum(range(10)))"


@pytest.fixture
def pool() -> Iterator[Any]:
    from agentsapi.adapters.local_sandbox import LocalSandbox, LocalSandboxConfig

    sandbox = LocalSandbox(LocalSandboxConfig(python=SANDBOX_PYTHON, runner_dir=str(ROOT / "sandbox_image"),
                                              workers=1, timeout_s=10))
    sandbox.warm_up()
    yield sandbox
    sandbox.close()


def run(sandbox: Any, code: str, timeout_s: float = 5.0) -> Any:
    return sandbox.execute(ExecutionRequest(code=code, timeout_s=timeout_s))


def victim_runs_normally(sandbox: Any) -> None:
    result = run(sandbox, VICTIM)
    assert result.status == "ok" and result.code_output() == "45\n", (result.status, result.code_output())


# -- 1. /dev is a writable tmpfs that the wipe never looks at ---------------------------------------

LIST_DEV = "import json, os\nprint(json.dumps(sorted(os.listdir('/dev'))))"


def test_what_a_cell_leaves_in_dev_never_reaches_the_next_tenant(pool: Any) -> None:
    pristine = json.loads(run(pool, LIST_DEV).outputs[0].text)
    attacker = (
        "import os\n"
        "open('/dev/leak.txt', 'w').write('tenant-a-secret')\n"
        "os.unlink('/dev/stdout')\n"
        "open('/dev/stdout', 'w').close()  # a regular file where the victim expects its stdout\n"
    )
    attempt = run(pool, attacker)
    assert attempt.status == "error" and "Read-only file system" in attempt.code_output(), attempt.code_output()
    victim = (
        "import json, os, subprocess\n"
        "subprocess.run('echo victim-secret > /dev/stdout', shell=True)\n"
        "print(json.dumps(sorted(os.listdir('/dev'))))\n"
    )
    result = run(pool, victim)
    assert "victim-secret" in result.code_output(), "the victim's output went into the attacker's file"
    listing = json.loads(result.code_output().strip().splitlines()[-1])
    assert listing == pristine, "the victim's /dev holds what the attacker left there"
    later = "import os\nprint(open('/dev/stdout').read() if os.path.isfile('/dev/stdout') else '')"
    assert "victim-secret" not in run(pool, later).code_output()


def test_dev_shm_and_dev_are_bounded_like_the_tmp_work_area(pool: Any) -> None:
    # /tmp is a 256 MB tmpfs with an inode limit; /dev (and /dev/shm on it) is a tmpfs of half the
    # host's RAM: a few executions fill the host's memory, and what is in /dev stays there.
    attacker = (
        "import os\n"
        "chunk = b'x' * (8 << 20)\n"
        "written = 0\n"
        "try:\n"
        "    for n in range(48):  # 384 MB, over the 256 MB of the work area\n"
        "        with open(f'/dev/shm/f{n}', 'wb') as handle:\n"
        "            handle.write(chunk)\n"
        "        written += len(chunk)\n"
        "except OSError as exc:\n"
        "    print('refused', exc.errno)\n"
        "print(written >> 20)\n"
    )
    result = run(pool, attacker, timeout_s=8)
    written_mb = int(result.code_output().strip().splitlines()[-1])
    assert written_mb <= 256, f"a cell put {written_mb} MB in /dev/shm (RAM), beyond the work area's limit"


# -- 2. the worker's pid namespace has a writable pid_max -------------------------------------------

def test_a_cell_cannot_lower_pid_max_for_every_later_execution(pool: Any) -> None:
    attacker = (
        "import os\n"
        "try:\n"
        "    open('/proc/sys/kernel/pid_max', 'w').write('301')\n"
        "except OSError as exc:\n"
        "    print('refused', exc.errno)\n"
        "for _ in range(400):  # move the pid cursor past 300: from then on one pid is left\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        os._exit(0)\n"
        "    os.waitpid(pid, 0)\n"
    )
    run(pool, attacker, timeout_s=8)
    victim = "import subprocess\nprint(subprocess.run(['echo', 'sub ok'], capture_output=True, text=True).stdout)"
    for _ in range(3):
        result = run(pool, victim)
        assert result.status == "ok" and "sub ok" in result.code_output(), (result.status, result.code_output())


# -- 3. the runner trusts the shape of the result frame user code can forge -------------------------

def forged_result(payload: str) -> str:
    """A cell that writes a result frame of its own on the channel (fd 3); ``payload`` is a
    Python expression for the frame's bytes, evaluated in the cell."""
    return ("import os, struct, time\n"
            f"payload = {payload}\n"
            "os.write(3, struct.pack('>cI', b'r', len(payload)) + payload)\n"
            "time.sleep(0.5)\n")


FORGED = {
    "restored_files_not_triples": "b'{\"restored_files\": [1]}'",
    "deeply_nested_json": "b'[' * 200_000 + b']' * 200_000",
}


@pytest.mark.parametrize("payload", FORGED.values(), ids=FORGED.keys())
def test_a_forged_result_frame_is_the_attackers_error_not_a_runner_failure(pool: Any, payload: str) -> None:
    result = run(pool, forged_result(payload))
    assert not any("the sandbox failed" in note for note in result.notes), result.notes
    victim_runs_normally(pool)


# -- 4. a worker that is resetting is handed to the next caller --------------------------------------

TAINTS = {
    "dev_shm_renamed": "import os\nos.rename('/dev/shm', '/dev/shm-moved')\n",
    "forged_result": forged_result(FORGED["restored_files_not_triples"]),
}


@pytest.mark.parametrize("attack", TAINTS.values(), ids=TAINTS.keys())
def test_the_next_tenant_never_gets_the_worker_a_tainted_execution_is_resetting(pool: Any, attack: str) -> None:
    run(pool, attack)
    # The worker answered the attacker and is exiting; the pool must not hand it to the victim.
    victim_runs_normally(pool)


# -- 5. the memory limit is per process, not per execution -------------------------------------------

def test_one_execution_cannot_hold_more_memory_than_its_limit(pool: Any) -> None:
    """RLIMIT_AS bounds each process; a cell that forks is bounded by its worker's cgroup (its
    footprint plus one execution's memory), so the host's memory is never at its mercy."""
    [worker] = list(pool._all)
    if "worker_memory_limit_mb" not in worker.hello.get("isolation", {}):
        pytest.skip("no cgroup v1 memory controller writable here (not root?)")
    # Held means held at the same time: a child that got its 300 MB and was then killed by the
    # OOM killer (to make room for another) no longer holds them.
    attacker = (
        "import os, time\n"
        "read_end, write_end = os.pipe()\n"
        "children = []\n"
        "for _ in range(6):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        block = bytearray(300 << 20)\n"
        "        for at in range(0, len(block), 4096):\n"
        "            block[at] = 1\n"
        "        os.write(write_end, str(os.getpid()).encode() + b' ')  # holding 300 MB now\n"
        "        time.sleep(4)\n"
        "        os._exit(0)\n"
        "    children.append(pid)\n"
        "os.close(write_end)\n"
        "time.sleep(3)\n"
        "os.set_blocking(read_end, False)\n"
        "try:\n"
        "    holding = {int(p) for p in os.read(read_end, 4096).split()}\n"
        "except BlockingIOError:\n"
        "    holding = set()\n"
        "alive = {pid for pid in children if os.waitpid(pid, os.WNOHANG) == (0, 0)}\n"
        "print(len(holding & alive) * 300)\n"
    )
    result = run(pool, attacker, timeout_s=8)
    lines = result.code_output().strip().splitlines()
    held_mb = int(lines[-1]) if lines and lines[-1].isdigit() else 0  # the cell itself may be the one killed
    assert held_mb <= 1024, f"one execution held {held_mb} MB with a 1024 MB memory limit"
    victim_runs_normally(pool)
