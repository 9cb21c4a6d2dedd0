"""Every call the security notes say the filter refuses, tried for real from a cell on this
machine's kernel, with arguments only the filter can refuse (tests/seccomp_expectations.py); the
same probe without the filter, as the same unprivileged uid, shows the kernel would have answered
otherwise. Deleting any rule from sandbox_runner/seccomp.py fails this test (`make mutate`)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
from typing import Any

from tests.conftest import SANDBOX_PYTHON
from tests.sandbox.hostile import assert_clean_slate, run
from tests.seccomp_expectations import check, probe_code


@functools.cache
def unfiltered() -> dict[str, Any]:
    """The probe as a plain process of the sandbox's uid: no filter, no namespaces."""
    drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    done = subprocess.run([*drop, SANDBOX_PYTHON, "-I", "-c", probe_code()], capture_output=True, text=True,
                          timeout=60, check=True, cwd="/")
    return dict(json.loads(done.stdout))


def test_every_call_the_notes_say_is_refused_is_refused_by_the_filter_in_a_cell(sandbox: Any) -> None:
    result, _ = run(sandbox, probe_code(), timeout_s=10)
    assert result.status == "ok", result.code_output()
    in_cell = json.loads(result.outputs[0].text)
    assert check(in_cell, unfiltered()) == []
    assert_clean_slate(sandbox)  # the probe's child is gone, nothing is left
