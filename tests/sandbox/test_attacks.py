"""The hostile-code catalogue (../shared/spec/sandbox-security.md, section 5): one test per attack.

Each runs through the local invoker (a bubblewrap worker running the same runner as Lambda)
and asserts: the runner returns within its deadline, the outcome is classified, and afterwards
no process is left, no file survives, secrets planted in the runner's environment never
appeared, and the next execution sees a clean slate.
"""

from __future__ import annotations

import base64
import threading
from typing import Any

import pytest

from agentsapi.sandbox.port import ExecutionRequest
from tests.sandbox.hostile import assert_clean_slate, assert_prompt, normal_time, run


@pytest.fixture(autouse=True)
def clean_afterwards(sandbox: Any) -> Any:
    yield
    assert_clean_slate(sandbox)


# 1
def test_fork_bomb(sandbox: Any) -> None:
    result, _ = run(sandbox, "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass")
    assert result.status == "timeout"


# 2
def test_memory_bomb(sandbox: Any) -> None:
    result, _ = run(sandbox, "x = []\nwhile True:\n    x.append(bytearray(50 * 1024 * 1024))", timeout_s=8)
    assert result.status == "memory"
    assert "MemoryError" in result.code_output() and "out of memory" in result.code_output()


# 3
def test_cpu_loop(sandbox: Any) -> None:
    result, _ = run(sandbox, "while True:\n    pass")
    assert result.status == "timeout"


# 4
def test_sleep_past_deadline(sandbox: Any) -> None:
    result, elapsed = run(sandbox, "import time\nprint('before', flush=True)\ntime.sleep(60)")
    assert result.status == "timeout" and elapsed < 4
    assert "before" in result.code_output() and "wall-clock limit" in result.code_output()


# 5
def test_huge_stdout(sandbox: Any) -> None:
    result, elapsed = run(sandbox, "while True:\n    print('x' * 10000)", timeout_s=5)
    assert result.status == "output_truncated" and elapsed < 3
    assert len(result.code_output()) < 110_000 and "output limit" in result.code_output()


# 6
def test_one_big_file(sandbox: Any) -> None:
    # Past the per-file limit (512 MiB, the Files API's), written sparse: RLIMIT_FSIZE refuses
    # the offset itself, without the test filling memory first.
    code = "with open('big', 'wb') as f:\n    f.seek(600 * 1024 * 1024)\n    f.write(b'0')"
    result, _ = run(sandbox, code, timeout_s=5)
    assert result.status == "error" and "File too large" in result.code_output()


# 7
def test_many_small_files(sandbox: Any) -> None:
    code = "import os\nfor i in range(100_000):\n    open(f'f{i}', 'w').close()"
    result, _ = run(sandbox, code, timeout_s=5)
    assert result.status in ("error", "timeout")
    if result.status == "error":
        assert "No space left on device" in result.code_output()


# 8
@pytest.mark.parametrize("path", ["/etc/x", "/x", "/usr/x", "/opt/x"])
def test_write_outside_work_dir_is_refused(sandbox: Any, path: str) -> None:
    result, _ = run(sandbox, f"open({path!r}, 'w').write('owned')")
    assert result.status == "error"
    assert "Read-only file system" in result.code_output() or "Permission denied" in result.code_output()


def test_writes_to_tmp_do_not_survive(sandbox: Any) -> None:
    result, _ = run(sandbox, "open('/tmp/left-behind', 'w').write('x')\nopen('../sibling', 'w').write('x')")
    assert result.status == "ok"
    # the autouse canary asserts /tmp and /tmp/sbx are back to their baseline


# 9
def test_environment_is_allow_listed(sandbox: Any) -> None:
    result, _ = run(sandbox, "import os\nprint(dict(os.environ))")
    assert result.status == "ok" and "PLANTED_SECRET" not in result.code_output()


# 10
def test_proc_environ_of_every_process(sandbox: Any) -> None:
    code = (
        "import os\n"
        "for name in os.listdir('/proc'):\n"
        "    if name.isdigit() or name == 'self':\n"
        "        try:\n"
        "            print(name, open(f'/proc/{name}/environ', 'rb').read())\n"
        "        except OSError as exc:\n"
        "            print(name, 'refused', exc.errno)\n"
    )
    result, _ = run(sandbox, code)
    assert result.status == "ok" and "refused" in result.code_output()  # the runner is non-dumpable


def test_runner_memory_cannot_be_read(sandbox: Any) -> None:
    from tests.sandbox.test_tenant_isolation import MEMORY_PROBE

    code = MEMORY_PROBE + (
        "import ctypes, os\n"
        "ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)\n"  # its own memory must read, or this proves nothing
        "print('self', read_memory('self'))\n"
        "for target in (os.getppid(), 1):\n"
        "    print(target, read_memory(target))\n"
    )
    result, _ = run(sandbox, code)
    lines = result.code_output().splitlines()
    assert lines[0] == "self read" and len(lines) == 3, lines
    assert not any(line.endswith(" read") for line in lines[1:]), lines


# 11 and 12
@pytest.mark.parametrize("code", [
    "import socket\nsocket.create_connection(('127.0.0.1', 9001), timeout=1)",  # the Lambda Runtime API
    "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)",
    "import socket\nsocket.getaddrinfo('example.com', 80)",
    "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.sendto(b'x', ('8.8.8.8', 53))",
    "import socket\nsocket.create_connection(('::1', 80), timeout=1)",
    "import socket\nsocket.socket(socket.AF_PACKET, socket.SOCK_RAW)",
    "import urllib.request\nurllib.request.urlopen('http://example.com', timeout=1)",
])
def test_no_network(sandbox: Any, code: str) -> None:
    result, _ = run(sandbox, code)
    assert result.status == "error", result.code_output()


def test_seccomp_refuses_inet_sockets(sandbox: Any) -> None:
    result, _ = run(sandbox, "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_STREAM)")
    assert result.isolation.get("seccomp") is True
    assert "PermissionError" in result.code_output()


def test_no_nested_user_namespaces(sandbox: Any) -> None:
    result, _ = run(sandbox, "import os\nos.unshare(os.CLONE_NEWUSER)")
    assert result.status == "error"


# 13
def test_background_daemon_is_killed(sandbox: Any) -> None:
    # The daemon leaves the execution's process group (setsid is refused, setpgid is not), so only
    # the sweep of every process of the uid can find it; the cell returns once it runs.
    code = (
        "import os, signal, time\n"
        "if os.fork() == 0:\n"
        "    os.setpgid(0, 0)\n"
        "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "    while True:\n"
        "        open('/tmp/daemon-was-here', 'w').write('x')\n"
        "        time.sleep(0.05)\n"
        "while not os.path.exists('/tmp/daemon-was-here'):\n"
        "    time.sleep(0.01)\n"
        "print('parent done, the daemon runs')\n"
    )
    normal = normal_time(sandbox)
    result, elapsed = run(sandbox, code)
    assert result.status == "ok" and "the daemon runs" in result.code_output()
    assert_prompt(elapsed, normal, "a daemon ignoring SIGTERM")


# 14
def test_threads_left_running(sandbox: Any) -> None:
    code = "import threading, time\nthreading.Thread(target=lambda: time.sleep(100), daemon=False).start()\nprint('ok')"
    result, _ = run(sandbox, code)
    assert "ok" in result.code_output()


def test_main_thread_exits_while_another_runs_on(sandbox: Any) -> None:
    # The process then looks like a zombie (its main thread is one) while a thread keeps running.
    code = (
        "import ctypes, threading, time\n"
        "def linger():\n"
        "    while True:\n"
        "        open('/tmp/still-running', 'w').write('x')\n"
        "        time.sleep(0.01)\n"
        "threading.Thread(target=linger).start()\n"
        "print('main thread leaving', flush=True)\n"
        "ctypes.CDLL(None).pthread_exit(None)\n"
    )
    result, _ = run(sandbox, code)
    assert result.status in ("timeout", "crashed", "error")


def test_many_quick_executions_never_mix_up_their_results(sandbox: Any) -> None:
    for number in range(15):
        result, _ = run(sandbox, f"print({number})\n{number} * 2")
        assert result.code_output() == f"{number}\n{number * 2}\n"


# 15
def test_ignoring_sigterm(sandbox: Any) -> None:
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)"
    result, _ = run(sandbox, code)
    assert result.status == "timeout"


# 16
def test_os_exit(sandbox: Any) -> None:
    result, _ = run(sandbox, "import os\nprint('kept', flush=True)\nos._exit(7)")
    assert result.exit_code == 7 and result.status == "error"
    assert "kept" in result.code_output() and "status 7" in result.code_output()


# 17
def test_close_pipes_then_sleep(sandbox: Any) -> None:
    code = "import os, time\nfor fd in (1, 2, 3):\n    os.close(fd)\ntime.sleep(60)"
    result, elapsed = run(sandbox, code)
    assert result.status == "timeout" and elapsed >= 1.9


# 18
def test_binary_garbage_output(sandbox: Any) -> None:
    code = "import os, sys\nos.write(1, bytes(range(256)) * 4)\nsys.stdout.write('\\udcff text\\n')"
    result, _ = run(sandbox, code)
    assert result.status == "ok" and "\ufffd" in result.code_output() and "text" in result.code_output()


# 19
def test_deep_recursion(sandbox: Any) -> None:
    code = "import sys\nsys.setrecursionlimit(10**9)\ndef f(n):\n    return f(n + 1)\nf(0)"
    result, _ = run(sandbox, code, timeout_s=5)
    assert result.status in ("crashed", "memory", "timeout", "error")


# 20
def test_ctypes_segfault(sandbox: Any) -> None:
    result, _ = run(sandbox, "import ctypes\nctypes.string_at(0)")
    assert result.status == "crashed" and result.signal == 11
    assert "SIGSEGV" in result.code_output()


# 21
def test_subprocess_sees_only_the_sandbox(sandbox: Any) -> None:
    code = "import subprocess\nprint(subprocess.run(['sh', '-c', 'id -u; ls /etc; cat /etc/passwd'], capture_output=True, text=True))"
    result, _ = run(sandbox, code)
    assert "65534" in result.code_output() and "root:x:0" not in result.code_output()


# 22
def test_killing_the_parent(sandbox: Any) -> None:
    result, _ = run(sandbox, "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nimport time\ntime.sleep(1)")
    assert result.status in ("crashed", "ok", "error", "timeout")
    follow_up, _ = run(sandbox, "print('still serving')", timeout_s=10)
    assert follow_up.status == "ok" and "still serving" in follow_up.code_output()


# 23
def test_planted_symlinks_and_fifos_are_not_followed(sandbox: Any) -> None:
    code = "import os\nos.symlink('/etc/ld.so.cache', 'result.txt')\nos.symlink('/', 'rootlink')\nos.mkfifo('pipe')\nprint('planted')"
    normal = normal_time(sandbox)
    result, elapsed = run(sandbox, code)
    assert result.status == "ok"
    assert_prompt(elapsed, normal, "planted links and FIFOs")
    assert result.files == []
    assert "not a regular file" in result.code_output()


# 24
def test_zip_bomb_is_bounded_by_the_limits(sandbox: Any) -> None:
    code = (
        "import zipfile\n"
        "with zipfile.ZipFile('bomb.zip', 'w', zipfile.ZIP_DEFLATED) as z, z.open('zeros', 'w') as f:\n"
        "    block = b'\\0' * (1 << 20)\n"
        "    for _ in range(600):\n"  # 600 MiB, past the 512 MiB a file may have
        "        f.write(block)\n"
        "zipfile.ZipFile('bomb.zip').extractall('out')\n"
    )
    result, _ = run(sandbox, code, timeout_s=10)
    assert result.status in ("error", "memory", "timeout")


# 25
def test_many_output_files_are_capped(sandbox: Any) -> None:
    result, _ = run(sandbox, "for i in range(50):\n    open(f'out{i:02}.txt', 'w').write(str(i))")
    assert result.status == "ok" and len(result.files) == 10
    assert "over the returned-files limit" in result.code_output()


# 26
def test_pickles_come_back_as_bytes(sandbox: Any) -> None:
    code = (
        "import pickle, os\n"
        "class Evil:\n"
        "    def __reduce__(self):\n"
        "        return (os.system, ('touch /tmp/pwned',))\n"
        "open('state.pkl', 'wb').write(pickle.dumps(Evil()))\n"
    )
    result, _ = run(sandbox, code)
    (returned,) = result.files
    assert returned.mime_type == "application/octet-stream"
    assert base64.b64decode(returned.content_b64).startswith(b"\x80")  # still a pickle: data, never loaded


# 27
def test_concurrent_runs_do_not_see_each_other(sandbox: Any) -> None:
    outputs: dict[str, str] = {}

    def one(tag: str) -> None:
        code = f"import os, time\nopen('mine', 'w').write({tag!r})\ntime.sleep(0.3)\nprint(sorted(os.listdir('.')), open('mine').read())"
        outputs[tag] = sandbox.execute(ExecutionRequest(code=code, timeout_s=5)).code_output()

    threads = [threading.Thread(target=one, args=(tag,)) for tag in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert outputs == {"a": "['mine'] a\n", "b": "['mine'] b\n"}


# 28
def test_nothing_persists_between_runs(sandbox: Any) -> None:
    code = "open('/tmp/persist', 'w').write('x')\nopen('here', 'w').write('x')\nimport os\nos.environ['LEAK'] = '1'\nX_GLOBAL = 1"
    run(sandbox, code)
    result, _ = run(sandbox, "import os\nprint(os.path.exists('/tmp/persist'), os.listdir('.'), 'LEAK' in os.environ, 'X_GLOBAL' in globals())")
    assert result.code_output() == "False [] False False\n"


def test_no_inherited_channel_but_our_own(sandbox: Any) -> None:
    # Sockets and pipes of the zygote or runner would be a way out of the process.
    code = (
        "import os, stat\n"
        "for name in sorted(os.listdir('/proc/self/fd'), key=int):\n"
        "    try:\n"
        "        mode = os.fstat(int(name)).st_mode\n"
        "    except OSError:\n"
        "        continue\n"
        "    kind = 'sock' if stat.S_ISSOCK(mode) else 'pipe' if stat.S_ISFIFO(mode) else 'other'\n"
        "    print(name, kind)\n"
    )
    result, _ = run(sandbox, code)
    channels = [line.split() for line in result.code_output().splitlines() if line.endswith(("sock", "pipe"))]
    assert all(int(fd) <= 3 for fd, _ in channels), channels


def test_figures_with_text_render_in_the_warm_child(sandbox: Any) -> None:
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('Sales by month')\nplt.xlabel('month')\nprint('plotted')"
    result, _ = run(sandbox, code)
    assert result.code_output() == "plotted\n" and [f.name for f in result.files] == ["plot_0.png"]


# 29
def test_grandchild_holding_the_pipe(sandbox: Any) -> None:
    code = "import subprocess\nsubprocess.Popen(['sh', '-c', 'sleep 30 &'])\nprint('returned')"
    normal = normal_time(sandbox)
    result, elapsed = run(sandbox, code)
    assert result.status == "ok" and "returned" in result.code_output()
    assert_prompt(elapsed, normal, "a grandchild holding the pipe")
