"""`make smoke` against `make serve`, in the suite, so that the operator's check of a deployed stack
cannot rot: every check passes here (scaled: a 7 s long turn, a 20 MB file)."""

from __future__ import annotations

import subprocess
import sys

from local.launcher import ROOT


def test_make_smoke_passes_against_make_serve(server_url: str) -> None:
    done = subprocess.run([sys.executable, "tools/smoke.py", "--url", server_url, "--long-turn-seconds", "7",
                           "--file-mb", "20"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert sum(line.startswith("ok  ") for line in lines) == 8 and lines[-1] == "all checks passed", done.stdout
