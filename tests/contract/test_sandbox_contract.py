"""The Sandbox port's two adapters held to one contract, with data by reference.

``local``: the bubblewrap worker pool, its blob store on the file system (as `make serve`).
``lambda``: the LambdaSandbox adapter invoking the image's handler as Lambda runs it, its blob
store S3 (moto in server mode), signed URLs in between (tests/lambda_mode/harness.py).
Where the two disagree, this file decides.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from agentsapi.sandbox.port import ExecutionRequest, ExecutionResult, SandboxFile


class Rig:
    def __init__(self, sandbox: Any, blobs: Any) -> None:
        self.sandbox, self.blobs = sandbox, blobs

    def run(self, code: str, **fields: Any) -> ExecutionResult:
        fields.setdefault("tenant", "ws-contract")
        return self.sandbox.execute(ExecutionRequest(code=code, blobs=self.blobs, timeout_s=15, **fields))


@pytest.fixture(params=["local", "lambda"])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Rig:
    if request.param == "local":
        from agentsapi.adapters.file_blobs import FileBlobs

        return Rig(request.getfixturevalue("sandbox"), FileBlobs(tmp_path / "blobs", os.urandom(32), "http://127.0.0.1"))
    harness = request.getfixturevalue("lambda_harness")
    return Rig(harness.sandbox, harness.blobs)


def test_an_input_by_reference_is_read_and_an_output_comes_back_by_key(rig: Rig) -> None:
    rig.blobs.put("files/ws-contract/in", b"a,b\n1,2\n3,4\n")
    result = rig.run("import pandas as pd\nframe = pd.read_csv('data.csv')\nprint(frame.b.sum())\n"
                     "frame.to_json('frame.json')", files=[SandboxFile(name="data.csv", key="files/ws-contract/in", size=12)])
    assert result.status == "ok" and result.code_output() == "6\n", result.code_output()
    [produced] = result.files
    assert produced.name == "frame.json" and produced.mime_type == "application/json"
    assert produced.key and result.exchange_prefix and produced.key.startswith(result.exchange_prefix)
    assert rig.blobs.get(produced.key) == b'{"a":{"0":1,"1":3},"b":{"0":2,"1":4}}'
    assert produced.size == len(rig.blobs.get(produced.key) or b"")


def test_the_session_is_handed_back_by_key_and_resumes(rig: Rig) -> None:
    first = rig.run("total = 40\nopen('notes.txt', 'w').write('kept')", carry_session=True)
    assert first.session is not None and first.session.key and first.session.bytes == rig.blobs.size(first.session.key)
    second = rig.run("print(total + 2, open('notes.txt').read())", carry_session=True, session_key=first.session.key)
    assert second.code_output() == "42 kept\n"


def test_an_input_no_longer_stored_stops_the_execution_before_it_runs(rig: Rig) -> None:
    result = rig.run("print('ran')", files=[SandboxFile(name="gone.csv", key="files/ws-contract/gone", size=5)])
    assert result.status == "error" and "no longer stored" in result.code_output()
    assert "ran" not in result.code_output()


def test_inputs_over_the_limit_of_one_execution_are_refused_before_anything_moves(rig: Rig) -> None:
    rig.blobs.put("files/ws-contract/small", b"x")
    huge = SandboxFile(name="huge.bin", key="files/ws-contract/small", size=(1 << 30) + 1)
    result = rig.run("print('ran')", files=[huge])
    assert result.status == "error" and "over the 1073741824-byte limit" in result.code_output()
    assert not [k for k in rig.blobs.keys("sandbox/") if "/in/" in k]


def test_what_the_code_leaves_unchanged_is_not_returned(rig: Rig) -> None:
    rig.blobs.put("files/ws-contract/same", b"unchanged")
    result = rig.run("print(open('same.txt').read())", files=[SandboxFile(name="same.txt", key="files/ws-contract/same",
                                                                           size=9)])
    assert result.code_output() == "unchanged\n" and result.files == []
