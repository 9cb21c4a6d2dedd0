"""Quotas and fairness: one tenant cannot fill, hog or hold what the others need.

Each test runs an attacker's key (A) and a victim's key (B) against a `make serve` of its own,
as a hostile review found them: sparse files that the server copied byte for byte until
DATA_DIR was full (then every write of every tenant was a 500), sixty busy processes each in a
session of its own, and connections that trickle one header byte at a time.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.servers import A_KEY, B_KEY, client, code_turn

MIB = 1024 * 1024
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small file system for DATA_DIR (root)")

# Ten sparse files of 100 MiB: no memory and no tmpfs space in the sandbox, 1,000 MiB of outputs.
SPARSE_CELL = ("for n in range(10):\n"
               "    with open(f'sparse_{n}.bin', 'wb') as f:\n"
               "        f.truncate(100 * 1024 * 1024)\n"
               "print('ten sparse files')")


@pytest.fixture
def small_disk() -> Iterator[Any]:
    """A file system of a given size for DATA_DIR, unmounted afterwards."""
    mounted: list[str] = []

    def make(size_mib: int) -> str:
        path = tempfile.mkdtemp(prefix="agents-small-disk-")
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", path], check=True)
        mounted.append(path)
        return path

    yield make
    for path in mounted:
        subprocess.run(["umount", "-l", path], check=False)
        Path(path).rmdir()


def free_bytes(path: str) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def workspace(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]  # how open mode names a key's workspace


def upload(api: httpx.Client, name: str, size: int) -> httpx.Response:
    return api.post("/v1/files", files={"file": (name, b"\0" * size, "application/octet-stream")},
                    data={"purpose": "batch"})


def stored_under(data_dir: str, prefix: str) -> int:
    root = Path(data_dir) / "blobs" / prefix
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")) \
        if root.exists() else 0


def execution_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text[:500]
    return next(o for o in response.json()["outputs"] if o["type"] == "tool.execution")


def victim_works(b: httpx.Client) -> None:
    """B's upload, new conversation, append and deletes, each as a user relies on it."""
    uploaded = upload(b, "victim.csv", 2 * MIB)
    assert uploaded.status_code == 200, uploaded.text[:300]
    started = b.post("/v1/conversations", json=code_turn("x = 41\nprint(x + 1)"))
    assert "42" in execution_of(started)["info"]["code_output"]
    conversation = started.json()["conversation_id"]
    appended = b.post(f"/v1/conversations/{conversation}",
                      json={"inputs": "```python\nprint(x * 2)\n```"})
    assert "82" in execution_of(appended)["info"]["code_output"]
    assert b.delete(f"/v1/files/{uploaded.json()['id']}").status_code == 200
    assert b.delete(f"/v1/conversations/{conversation}").status_code == 204


def test_a_tenant_is_stopped_by_its_quota_and_the_disk_never_fills(serve: Any, small_disk: Any) -> None:
    data_dir = small_disk(600)
    quota = 200 * MIB
    server = serve({"STORAGE_QUOTA_BYTES": str(quota), "DATA_DIR_RESERVE_BYTES": str(32 * MIB),
                    "SANDBOX_TIMEOUT_S": "30"}, data_dir=data_dir)
    lowest = [free_bytes(data_dir)]
    watching = threading.Event()

    def watch() -> None:
        while not watching.is_set():
            lowest[0] = min(lowest[0], free_bytes(data_dir))
            time.sleep(0.01)

    threading.Thread(target=watch, daemon=True).start()
    with client(server, A_KEY, timeout=120) as a, client(server, B_KEY, timeout=120) as b:
        outcome: dict[str, Any] = {}

        def attack() -> None:
            first = a.post("/v1/conversations", json=code_turn(SPARSE_CELL))
            outcome["first"] = execution_of(first)
            again = a.post(f"/v1/conversations/{first.json()['conversation_id']}",
                           json={"inputs": f"```python\n{SPARSE_CELL}\n```"})
            outcome["again"] = execution_of(again)

        attacker = threading.Thread(target=attack)
        attacker.start()
        victim_works(b)  # during the attack
        attacker.join(timeout=300)
        victim_works(b)  # and after it
        watching.set()

        first, again = outcome["first"], outcome["again"]
        # The first turn keeps what the quota has room for (two of the ten files), and says why
        # the rest was not kept; the next keeps nothing.
        assert len(first["info"].get("files", [])) == 2
        assert "over the workspace's storage quota" in first["info"]["code_output"]
        assert not again["info"].get("files")
        assert "storage quota" in again["info"]["code_output"]
        refused = upload(a, "more.bin", MIB)
        assert refused.status_code == 507, refused.text[:300]
        body = refused.json()
        assert body["type"] == "storage_quota_exceeded" and body["param"] == "file"
        assert body["quota"]["quota_bytes"] == quota and body["quota"]["used_bytes"] <= quota
        assert body["quota"]["requested_bytes"] == MIB
        assert str(quota) in body["message"]

        # The disk never came near full: at most the attacker's quota and the victim's files.
        assert lowest[0] > 600 * MIB - quota - 64 * MIB, f"free space fell to {lowest[0] >> 20} MiB"
        # Usage is what is stored, and no execution left data in transit.
        usage = a.get("/v1/usage").json()["storage"]
        listed = sum(f["bytes"] for f in a.get("/v1/files").json()["data"])
        assert usage["files_bytes"] == listed == stored_under(data_dir, f"files/{workspace(A_KEY)}")
        assert usage["sessions_bytes"] == stored_under(data_dir, f"sessions/{workspace(A_KEY)}")
        assert usage["used_bytes"] <= quota and usage["quota_bytes"] == quota
        assert stored_under(data_dir, "sandbox") == 0
        assert b.get("/v1/usage").json()["storage"]["used_bytes"] == stored_under(
            data_dir, f"files/{workspace(B_KEY)}") + stored_under(data_dir, f"sessions/{workspace(B_KEY)}")


def test_a_full_disk_keeps_reads_and_deletes_and_refuses_writes_with_507(serve: Any, small_disk: Any) -> None:
    """The quota is set above the file system's size: the disk reserve is what holds."""
    data_dir = small_disk(400)
    reserve = 64 * MIB
    server = serve({"DATA_DIR_RESERVE_BYTES": str(reserve), "SANDBOX_TIMEOUT_S": "30"}, data_dir=data_dir)
    with client(server, A_KEY, timeout=120) as a, client(server, B_KEY, timeout=120) as b:
        kept = upload(b, "victim.csv", MIB)
        assert kept.status_code == 200
        conversation = b.post("/v1/conversations", json=code_turn("print('before')"))
        assert conversation.status_code == 200
        mine: list[str] = []
        while free_bytes(data_dir) > reserve + 150 * MIB:  # A fills the disk with uploads...
            response = upload(a, f"fill-{len(mine)}.bin", 20 * MIB)
            assert response.status_code == 200, response.text[:300]
            mine.append(response.json()["id"])
        # ... then a cell whose outputs would pass the reserve: copying stops there, the turn is a
        # 507 (not a 500), and nothing of it stays in the store.
        sparse = a.post("/v1/conversations", json=code_turn(SPARSE_CELL))
        assert sparse.status_code == 507, sparse.text[:300]
        assert sparse.json()["type"] == "insufficient_storage"
        assert stored_under(data_dir, "sandbox") == 0
        assert stored_under(data_dir, f"sessions/{workspace(A_KEY)}") == 0
        for size in (20 * MIB, MIB):  # A fills what is left, down to the reserve
            for attempt in range(200):
                response = upload(a, f"fill-{size}-{attempt}.bin", size)
                if response.status_code != 200:
                    break
                mine.append(response.json()["id"])
            assert response.status_code == 507 and response.json()["type"] == "insufficient_storage"
        assert free_bytes(data_dir) >= reserve

        # Writes, for everyone, are a clear 507; reads and deletes work.
        for write in (lambda: upload(b, "new.csv", MIB),
                      lambda: b.post("/v1/conversations", json=code_turn("print(1)")),
                      lambda: b.post("/v1/agents", json={"model": "m", "name": "late"})):
            refused = write()
            assert refused.status_code == 507 and refused.json()["type"] == "insufficient_storage", refused.text
            assert "reserve" in refused.json()["message"]
        assert b.get("/v1/files").status_code == 200
        assert b.get(f"/v1/files/{kept.json()['id']}/content").content == b"\0" * MIB
        assert b.get(f"/v1/conversations/{conversation.json()['conversation_id']}/history").status_code == 200
        assert b.delete(f"/v1/conversations/{conversation.json()['conversation_id']}").status_code == 204
        # Deleting frees space for new writes.
        for file_id in mine[:4]:
            assert a.delete(f"/v1/files/{file_id}").status_code == 200
        assert upload(b, "new.csv", MIB).status_code == 200
        assert b.post("/v1/conversations", json=code_turn("print(6 * 7)")).status_code == 200


def _turn_seconds(b: httpx.Client) -> float:
    started = time.perf_counter()
    response = b.post("/v1/conversations", json=code_turn("print('hello')"))
    took = time.perf_counter() - started
    assert "hello" in execution_of(response)["info"]["code_output"]
    return took


def _get_seconds(b: httpx.Client) -> float:
    started = time.perf_counter()
    assert b.get("/v1/agents").status_code == 200
    return time.perf_counter() - started


def _busy_processes() -> int:
    """Processes of the sandbox uid (65534) using the CPU now: the attack's own handshake."""
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == 65534:
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                count += state == "R"
        except OSError:
            continue
    return count


# Sixty busy processes, each trying to become a session of its own (a scheduler autogroup); each
# exits 0 if setsid was refused, and the cell counts them.
BUSY_CELL = ("import os, time\n"
             "children = []\n"
             "for _ in range(60):\n"
             "    pid = os.fork()\n"
             "    if pid == 0:\n"
             "        try:\n"
             "            os.setsid()\n"
             "            refused = False\n"
             "        except PermissionError:\n"
             "            refused = True\n"
             "        end = time.monotonic() + 8\n"
             "        while time.monotonic() < end:\n"
             "            pass\n"
             "        os._exit(0 if refused else 1)\n"
             "    children.append(pid)\n"
             "print('setsid refused:', sum(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) == 0 for p in children))\n")


@pytest.fixture(params=["autogroups", "no-autogroups"])
def scheduler(request: pytest.FixtureRequest) -> Iterator[str]:
    """As the kernel ships (a scheduler autogroup per session, so per worker), and with autogroups
    off, where only the workers' cpu cgroups group a cell's processes."""
    knob = Path("/proc/sys/kernel/sched_autogroup_enabled")
    saved = knob.read_text()
    if request.param == "no-autogroups":
        knob.write_text("0")
    try:
        yield request.param
    finally:
        knob.write_text(saved)


# Measures the whole machine's CPU (and flips a kernel-wide scheduler knob): run alone (make test's
# second phase), never beside other tests.
@pytest.mark.serial
def test_sixty_busy_processes_leave_another_tenants_cell_and_the_api_their_share(serve: Any, scheduler: str) -> None:
    server = serve({"SANDBOX_WORKERS": "2", "SANDBOX_TIMEOUT_S": "40"})
    with client(server, A_KEY, timeout=120) as a, client(server, B_KEY, timeout=60) as b:
        for _ in range(3):
            _turn_seconds(b)  # warm
        idle_turn = statistics.median(_turn_seconds(b) for _ in range(9))
        idle_get = statistics.median(_get_seconds(b) for _ in range(30))
        attack: dict[str, Any] = {}
        attacker = threading.Thread(target=lambda: attack.update(
            response=a.post("/v1/conversations", json=code_turn(BUSY_CELL))))
        attacker.start()
        deadline = time.monotonic() + 20
        while _busy_processes() < 40:  # the attack is running before anything is measured
            assert time.monotonic() < deadline, "the attacker's processes never ran"
            time.sleep(0.05)
        loaded_turn = statistics.median(_turn_seconds(b) for _ in range(9))
        loaded_get = statistics.median(_get_seconds(b) for _ in range(30))
        still_running = _busy_processes() >= 40
        attacker.join(timeout=60)
    assert still_running, "the attack ended before the victim's measurements did"
    assert "setsid refused: 60" in execution_of(attack["response"])["info"]["code_output"]
    assert loaded_turn <= 3 * idle_turn, f"victim's cell: {idle_turn * 1000:.0f} ms idle, {loaded_turn * 1000:.0f} loaded"
    assert loaded_get <= 3 * idle_get, \
        f"victim's GET: {idle_get * 1000:.1f} ms idle, {loaded_get * 1000:.1f} ms loaded"


def _trickle(port: int, address: str) -> socket.socket | None:
    try:
        connection = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(address, 0))
        connection.sendall(b"G")
        return connection
    except OSError:
        return None


def _closed(connection: socket.socket) -> bool:
    connection.settimeout(0)
    try:
        return connection.recv(65536) == b""  # the server closed it (after a 503 or nothing)
    except BlockingIOError:
        return False
    except OSError:
        return True


@pytest.mark.serial  # deadlines measured on the clock: alone
def test_trickling_connections_are_closed_within_the_header_deadline(serve: Any) -> None:
    header_timeout = 5.0
    server = serve({"SANDBOX_MODE": "disabled", "HEADER_TIMEOUT_S": str(header_timeout)})
    started = time.monotonic()
    trickles = [c for c in (_trickle(server.port, "127.0.0.2") for _ in range(300)) if c is not None]
    try:
        with client(server, B_KEY, timeout=10) as b:  # another client is served meanwhile
            while time.monotonic() - started < header_timeout + 3:
                assert b.get("/v1/agents").status_code == 200
                for connection in trickles:
                    if not _closed(connection):
                        with contextlib.suppress(OSError):  # closed meanwhile
                            connection.send(b"E")  # one more header byte: the deadline is not reset
                time.sleep(1)
        open_ones = [c for c in trickles if not _closed(c)]
        assert not open_ones, f"{len(open_ones)} trickling connections still open after {header_timeout} s"
    finally:
        for connection in trickles:
            connection.close()


@pytest.mark.serial  # a thousand connections: alone
def test_beyond_its_capacity_the_server_refuses_at_once(serve: Any) -> None:
    server = serve({"SANDBOX_MODE": "disabled", "MAX_CONNECTIONS": "40", "MAX_CONNECTIONS_PER_CLIENT": "0"})
    held = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(40)]
    try:
        time.sleep(0.5)
        started = time.monotonic()
        refused = httpx.get(f"{server.url}/v1/agents", headers={"Authorization": f"Bearer {B_KEY}"}, timeout=5)
        assert time.monotonic() - started < 2
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
        assert refused.json()["type"] == "service_unavailable" and "capacity" in refused.json()["message"]
    finally:
        for connection in held:
            connection.close()
    time.sleep(0.5)
    assert httpx.get(f"{server.url}/v1/agents", headers={"Authorization": f"Bearer {B_KEY}"}).status_code == 200
