"""Data by reference through a local worker's exchange directory, and the attacks on it.

The exchange directory (/tmp/xchg in the worker, a host path to the API side) is writable by
the sandbox uid, and the API side may be root: whatever a cell plants there must never make the
host side read or write anywhere else, and nothing one execution leaves there reaches the next.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import pytest

from agentsapi.adapters.file_blobs import FileBlobs
from agentsapi.adapters.local_exchange import HostExchange
from agentsapi.sandbox.port import ExecutionRequest, ExecutionResult, SandboxFile, SessionState
from tests.sandbox.hostile import assert_clean_slate, assert_prompt, normal_time


@pytest.fixture
def blobs(tmp_path: Path) -> FileBlobs:
    return FileBlobs(tmp_path / "blobs", os.urandom(32), "http://127.0.0.1")


def run(sandbox: Any, blobs: FileBlobs, code: str, **fields: Any) -> ExecutionResult:
    return sandbox.execute(ExecutionRequest(code=code, blobs=blobs, timeout_s=10, **fields))


# After an attacker's cell (one workspace), the victim's (another) on the same warm worker: right,
# and in its normal time, measured at the start of each test (a bound relative to it holds on a
# loaded machine too).
@pytest.fixture
def normal(sandbox: Any) -> float:
    return normal_time(sandbox)


def run_victim(sandbox: Any, blobs: FileBlobs, code: str, normal: float, **fields: Any) -> ExecutionResult:
    """The victim workspace's cell, which must take no longer than ``normal`` allows."""
    started = time.monotonic()
    result = run(sandbox, blobs, code, tenant="ws-victim", **fields)
    assert_prompt(time.monotonic() - started, normal, "the victim's execution")
    return result


def test_inputs_outputs_and_the_session_travel_by_reference(sandbox: Any, blobs: FileBlobs) -> None:
    data = os.urandom(12 * 1024 * 1024)  # bigger than anything the pipe protocol carried (6 MB)
    blobs.put("files/ws/f1", data)
    first = run(sandbox, blobs, "import hashlib\nraw = open('in.bin', 'rb').read()\n"
                                "print(hashlib.sha256(raw).hexdigest())\nopen('out.bin', 'wb').write(raw[::-1])\n"
                                "kept = len(raw)", files=[SandboxFile(name="in.bin", key="files/ws/f1", size=len(data))],
                carry_session=True)
    assert first.status == "ok", first.code_output()
    assert first.code_output().startswith(hashlib.sha256(data).hexdigest())
    [produced] = first.files
    assert produced.key and produced.key.startswith(first.exchange_prefix or "-") and not produced.content_b64
    assert blobs.get(produced.key) == data[::-1]
    assert first.session is not None and first.session.key and blobs.size(first.session.key)
    second = run(sandbox, blobs, "print(kept)", carry_session=True, session_key=first.session.key)
    assert second.code_output() == f"{len(data)}\n"


def test_the_inputs_of_one_execution_are_bounded(sandbox: Any, blobs: FileBlobs) -> None:
    blobs.put("files/ws/small", b"x")
    huge = SandboxFile(name="huge.csv", key="files/ws/small", size=2 * 1024 * 1024 * 1024)  # as its record says
    result = run(sandbox, blobs, "print('ran')", files=[huge])
    assert result.status == "error" and "over the 1073741824-byte limit" in result.code_output()
    assert "ran" not in result.code_output()


def test_a_link_planted_in_place_of_the_exchange_directory_is_never_followed(sandbox: Any, blobs: FileBlobs,
                                                                              tmp_path: Path, normal: float) -> None:
    target = tmp_path / "host-dir"
    target.mkdir(mode=0o777)
    attacker = f"import shutil, os\nshutil.rmtree('/tmp/xchg')\nos.symlink({str(target)!r}, '/tmp/xchg')\nprint('planted')"
    assert run(sandbox, blobs, attacker, tenant="ws-attacker").code_output() == "planted\n"
    blobs.put("files/ws/f2", b"victim data")
    victim = run_victim(sandbox, blobs, "print(open('v.txt').read())", normal,
                        files=[SandboxFile(name="v.txt", key="files/ws/f2", size=11)])
    assert victim.code_output() == "victim data\n"  # the runner made the directory anew
    assert list(target.iterdir()) == []  # and nothing was written through the link
    assert_clean_slate(sandbox)


def test_what_a_cell_leaves_in_the_exchange_directory_reaches_no_one(sandbox: Any, blobs: FileBlobs,
                                                                     normal: float) -> None:
    leave = ("import os\nfor name in ('0' * 32, 'f' * 32, 'out'):\n    os.makedirs(f'/tmp/xchg/{name}/out', exist_ok=True)\n"
             "    open(f'/tmp/xchg/{name}/out/0', 'w').write('planted')\n    os.symlink('/etc/passwd', f'/tmp/xchg/{name}/in-0')\n"
             "print(sorted(os.listdir('/tmp/xchg')))")
    result = run(sandbox, blobs, leave, tenant="ws-attacker")
    assert "0000" in result.code_output() and result.files == []
    blobs.put("files/ws/f3", b"mine")
    victim = run_victim(sandbox, blobs, "import os\nprint(sorted(os.listdir('/tmp/xchg')), open('m.txt').read())", normal,
                        files=[SandboxFile(name="m.txt", key="files/ws/f3", size=4)])
    assert victim.code_output() == "[] mine\n", victim.code_output()
    assert victim.files == []


def test_the_host_side_refuses_refs_the_runner_never_makes(tmp_path: Path, blobs: FileBlobs) -> None:
    root = tmp_path / "xchg"
    root.mkdir()
    exchange = HostExchange(str(root), blobs, None, 1 << 30)
    exchange.send(ExecutionRequest(code="", carry_session=True, blobs=blobs), {"code": ""})
    (tmp_path / "secret").write_text("host file")
    os.symlink(tmp_path / "secret", root / exchange.id / "link")
    (root / exchange.id / "out").mkdir()
    os.symlink(tmp_path / "secret", root / exchange.id / "out" / "0")
    # Regular files the host side could take, under names the runner never gives an output: only
    # the refs' own shape keeps them out (a file named like the session, a session in a file slot).
    (root / exchange.id / "out" / "notes").write_text("planted")
    (root / exchange.id / "out" / "7").write_text("planted")
    (root / exchange.id / "in-0").write_text("planted")
    result = ExecutionResult(status="ok", files=[SandboxFile(name="a", ref="../secret"), SandboxFile(name="b", ref="link"),
                                                 SandboxFile(name="c", ref="out/0"), SandboxFile(name="d", ref="out/notes"),
                                                 SandboxFile(name="e", ref="out/session")],
                             session=SessionState(ref="out/7"))
    exchange.receive(result)
    assert result.files == [] and result.session is None
    assert blobs.keys("sandbox/") == []
    assert exchange.close() and not (root / exchange.id).exists()
    assert (tmp_path / "secret").read_text() == "host file"


def test_the_runner_hands_back_no_more_than_the_workspace_may_store(sandbox: Any, blobs: FileBlobs) -> None:
    """The runner is told the room the storage quota leaves (room_bytes) and measures what the
    code wrote before handing anything over: the outputs past it never leave the sandbox."""
    result = run(sandbox, blobs, "for n in range(3):\n    open(f'part_{n}.bin', 'wb').write(bytes(600))\nkeep = 1",
                 carry_session=True, room_bytes=1000)
    assert [f.name for f in result.files] == ["part_0.bin"]
    text = result.code_output()
    assert "files not returned:" in text and "over the workspace's storage quota" in text  # the runner's own note
    assert result.session is None and "the workspace's storage quota has room for 400 more bytes" in text
    assert blobs.keys("sandbox/") == [f.key for f in result.files]
