"""`make mutate-pure`: mutmut over the pure modules a defence table would cover too coarsely (the
storage quota's arithmetic, the connection deadlines and caps, the input bounds, the
Content-Disposition builder, the blob key layouts), with their unit tests. Every survivor must be
explained in EXPLAINED below, or the run fails: a survivor is either a test to write or a mutant
no test can tell from the original (said why).

mutmut 2 (its own virtualenv, .venv-mutmut) mutates a copy of the checkout, one mutant at a time.
About 8 minutes on this machine; not part of CI (`make mutate`, the defence table, is).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.mutate import copy_checkout  # noqa: E402

MODULES = ("layers/agentsapi/quota.py", "layers/agentsapi/http/connections.py", "layers/agentsapi/limits.py",
           "layers/agentsapi/http/headers.py", "layers/agentsapi/blobs.py")
TESTS = ("tests/unit/test_quota.py", "tests/unit/test_connections.py", "tests/unit/test_limits_and_headers.py",
         "tests/unit/test_models.py", "tests/unit/test_template.py", "tests/contract/test_usage_ledger_contract.py")

# (module, a regex the mutated line matches, why no test can tell it from the original)
EXPLAINED: tuple[tuple[str, str, str], ...] = (
    ("", r"(float|str|int) & (None|int)", "an annotation: not evaluated (from __future__ import annotations)"),
    ("", r"\[/path,", "not Python: the module no longer compiles, and every test of it fails to import"),
    ("connections.py", r"self\.started = (1\.0|None)$", "an initial value expect_body() always sets before use"),
    ("connections.py", r"_per_client\[address\] < 0:", "killed by test_released_addresses_leave_nothing_behind "
                                                        "in a run that collects it; an equal count is 0 either way"),
    ("headers.py", r'_ATTR_CHARS = "XX', "adds X, which quote() never encodes anyway (alphanumeric)"),
    ("quota.py", r"quota_bytes=usage\.quota_bytes or 1", "reached only without a quota, where nothing is refused"),
    ("blobs.py", r"def (put|presigned_post)\(", "a Protocol's default: never executed"),
)


def explained(module: str, mutated: str) -> str | None:
    for where, pattern, why in EXPLAINED:
        if module.endswith(where) and re.search(pattern, mutated):
            return why
    return None


def main() -> int:
    mutmut = ROOT / ".venv-mutmut" / "bin" / "mutmut"
    with tempfile.TemporaryDirectory(prefix="agents-mutmut-") as scratch:
        work = Path(scratch)
        copy_checkout(work)
        runner = f"{sys.executable} -m pytest -x -q -p no:cacheprovider {' '.join(TESTS)}"
        subprocess.run([str(mutmut), "run", "--paths-to-mutate", ",".join(MODULES), "--tests-dir", "tests/unit",
                        "--runner", runner, "--no-progress"], cwd=work, capture_output=True, text=True, check=False)
        listing = subprocess.run([str(mutmut), "results"], cwd=work, capture_output=True, text=True).stdout
        survived = listing.split("Survived", 1)[1].split("Untested", 1)[0] if "Survived" in listing else ""
        ids: list[int] = []
        for group in re.findall(r"^([0-9][0-9, -]*)$", survived, flags=re.MULTILINE):
            for part in group.split(","):
                low, _, high = part.strip().partition("-")
                ids.extend(range(int(low), int(high or low) + 1))
        unexplained = 0
        for mutant in ids:
            shown = subprocess.run([str(mutmut), "show", str(mutant)], cwd=work, capture_output=True, text=True).stdout
            module = next((line[4:].strip() for line in shown.splitlines() if line.startswith("--- ")), "?")
            mutated = " ".join(line[1:].strip() for line in shown.splitlines()
                               if line.startswith("+") and not line.startswith("+++"))
            why = explained(module, mutated)
            unexplained += why is None
            print(f"{'explained' if why else 'SURVIVED '}  {module}: {mutated[:100]}" + (f"  ({why})" if why else ""))
        killed = re.search(r"Killed.*?\((\d+)\)", listing)
        print(f"{len(ids)} survivors, {unexplained} unexplained" + (f"; {killed.group(1)} killed" if killed else ""))
    return 1 if unexplained else 0


if __name__ == "__main__":
    raise SystemExit(main())
