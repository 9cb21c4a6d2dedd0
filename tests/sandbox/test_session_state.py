"""The session state file: what one execution leaves for the next. Values are pickled straight
into the file (never held twice in memory), the largest are dropped first when the state is over
its limit, one value that cannot be restored does not lose the others, and a state written by the
previous format (version 1) still restores after an upgrade."""

from __future__ import annotations

import json
import subprocess
import textwrap
from typing import Any

from tests.conftest import ROOT, SANDBOX_PYTHON
from tests.integration.test_sessions import output, run

SCRIPT_HEAD = f"""
import json, os, pickle, sys, tempfile
sys.path.insert(0, {str(ROOT / "sandbox_image")!r})
from sandbox_runner import session
work = tempfile.mkdtemp()
"""


def in_sandbox_python(body: str) -> Any:
    """Run ``body`` with the sandbox's interpreter (cloudpickle is there) and return what it prints as JSON."""
    done = subprocess.run([SANDBOX_PYTHON, "-c", SCRIPT_HEAD + textwrap.dedent(body)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_values_and_files_round_trip_and_a_broken_value_loses_only_itself() -> None:
    result = in_sandbox_python("""
        class Breaks:
            def __reduce__(self):
                return (int, ("not a number",))   # unpickling raises ValueError
        def double(a):
            return a * 2
        open(os.path.join(work, "notes.txt"), "w").write("kept")
        namespace = {"__name__": "__main__", "x": 21, "broken": Breaks(), "double": double, "json": json}
        out = os.path.join(work, "..", os.path.basename(work) + ".state")
        notes = session.capture(namespace, work, 1 << 20, out)
        os.unlink(os.path.join(work, "notes.txt"))
        fresh = {}
        with open(out, "rb") as handle:
            loaded, files = session.restore(handle, fresh, work)
        print(json.dumps({"capture": notes, "restore": loaded, "x": fresh.get("x"),
                          "double": fresh["double"](4), "json": fresh["json"].__name__,
                          "file": open(os.path.join(work, "notes.txt")).read(), "files": [f[0] for f in files]}))
    """)
    assert result["capture"] == []
    assert len(result["restore"]) == 1 and result["restore"][0].startswith("session: could not restore broken:")
    assert (result["x"], result["double"], result["json"], result["file"], result["files"]) == (21, 8, "json", "kept",
                                                                                                ["notes.txt"])


def test_over_the_limit_the_largest_go_first_and_the_file_stays_within_it() -> None:
    result = in_sandbox_python("""
        namespace = {"small": b"s" * 1000, "a": b"a" * 300_000, "b": b"b" * 300_000, "huge": b"h" * 900_000}
        open(os.path.join(work, "data.bin"), "wb").write(b"d" * 500_000)
        out = os.path.join(work, "..", os.path.basename(work) + ".state")
        notes = session.capture(namespace, work, 1_000_000, out)
        size = os.path.getsize(out)
        os.unlink(os.path.join(work, "data.bin"))
        fresh = {}
        with open(out, "rb") as handle:
            session.restore(handle, fresh, work)
        print(json.dumps({"notes": notes, "size": size, "kept": sorted(fresh),
                          "file": os.path.exists(os.path.join(work, "data.bin"))}))
    """)
    assert result["notes"] == ["session: not carried to the next execution: "
                               "data.bin (file: over the 1000000-byte session limit), "
                               "huge (value: over the 1000000-byte session limit)"]
    assert result["kept"] == ["a", "b", "small"] and not result["file"]
    assert result["size"] < 1_000_000 + 4096  # the limit, plus the index


def test_a_state_written_by_version_1_still_restores() -> None:
    result = in_sandbox_python("""
        state = {"version": 1, "modules": {"j": "json"}, "values": {"x": pickle.dumps([1, 2])},
                 "files": {"old.txt": b"from v1"}}
        path = os.path.join(work, "..", os.path.basename(work) + ".v1")
        with open(path, "wb") as handle:
            pickle.dump(state, handle)
        fresh = {}
        with open(path, "rb") as handle:
            notes, files = session.restore(handle, fresh, work)
        print(json.dumps({"notes": notes, "x": fresh["x"], "j": fresh["j"].__name__,
                          "file": open(os.path.join(work, "old.txt")).read()}))
    """)
    assert result == {"notes": [], "x": [1, 2], "j": "json", "file": "from v1"}


def test_a_value_too_big_to_pickle_twice_in_memory_is_dropped_for_the_limit_and_the_rest_carries(
        api: Any, services: Any, sandbox: Any) -> None:
    services.conversations.runtime.sandbox = sandbox
    # 450 MB fits in the execution's 1 GiB once, not twice: pickled in memory first, it was
    # dropped with a MemoryError note; written straight to the file, it stops at the limit.
    first = run(api, None, "big = bytes(450 * 1024 * 1024)\nkeep = 42\nprint('made')")
    text = output(first)
    assert text.startswith("made\n") and "big (value: over the" in text and "MemoryError" not in text
    assert output(run(api, first["conversation_id"], "print(keep, 'big' in globals())")) == "42 False\n"
