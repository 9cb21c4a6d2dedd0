"""`make mutate`: every defence fails a test when it is removed.

Copies the checkout's tracked files to a temporary directory, checks that the tests the table
names pass there as they are, then applies each mutation of tools/mutations.py alone and runs its
tests: a mutation is *killed* when they fail, *survives* when they pass (the gate fails: the
defence is invisible to the suite), and is *broken* when its text is not found exactly once or
the tests cannot even run (the gate fails too: the table has rotted).

    .venv/bin/python tools/mutate.py [--only SUBSTRING] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.mutations import MUTATIONS, Mutation  # noqa: E402

PYTEST = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "no:randomly"]


def copy_checkout(target: Path) -> None:
    """The tracked files as they are in the working tree (a mutation is tried on this code)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


def run_tests(workdir: Path, tests: tuple[str, ...], log: Path) -> tuple[int, float]:
    started = time.monotonic()
    with log.open("w") as sink:
        done = subprocess.run([*PYTEST, *tests], cwd=workdir, stdout=sink, stderr=subprocess.STDOUT,
                              env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, check=False)
    return done.returncode, time.monotonic() - started


def apply(workdir: Path, mutation: Mutation) -> str | None:
    """Mutate the copy; the original text to put back, or None if ``find`` is not there exactly once."""
    path = workdir / mutation.path
    original = path.read_text()
    start = original.find(mutation.after) if mutation.after else 0
    if start < 0 or original[start:].count(mutation.find) != 1:
        return None
    at = original.index(mutation.find, start)
    path.write_text(original[:at] + mutation.replace + original[at + len(mutation.find):])
    return original


def markdown() -> str:
    """The table as docs/security.md shows it (tests/unit/test_mutation_table.py keeps them equal)."""
    rows = ["| defence removed (mutation) | notes | where | tests that fail |", "|---|---|---|---|"]
    for mutation in MUTATIONS:
        tests = "<br>".join(f"`{t.split('::')[-1] if '::' in t else t}`" for t in mutation.tests)
        rows.append(f"| {mutation.name} | {mutation.section} | `{mutation.path.rsplit('/', 1)[-1]}` | {tests} |")
    return "\n".join(rows) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="run the mutations whose name contains this")
    parser.add_argument("--keep", action="store_true", help="keep the copy and its logs")
    parser.add_argument("--markdown", action="store_true", help="print the table for docs/security.md and stop")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(), end="")
        return 0
    chosen = [m for m in MUTATIONS if args.only in m.name]
    workdir = Path(tempfile.mkdtemp(prefix="agents-mutate-"))
    started = time.monotonic()
    failures: list[str] = []
    try:
        copy_checkout(workdir)
        every_test = tuple(sorted({t for m in chosen for t in m.tests}))
        code, took = run_tests(workdir, every_test, workdir / "baseline.log")
        print(f"baseline: {len(every_test)} test targets, exit {code} in {took:.0f} s", flush=True)
        if code != 0:
            print((workdir / "baseline.log").read_text()[-3000:])
            print("the named tests fail without any mutation: fix them first")
            return 1
        for number, mutation in enumerate(chosen, 1):
            original = apply(workdir, mutation)
            if original is None:
                verdict, took = "BROKEN (text not found exactly once)", 0.0
            else:
                try:
                    code, took = run_tests(workdir, mutation.tests, workdir / f"mutation-{number}.log")
                finally:
                    (workdir / mutation.path).write_text(original)
                verdict = {1: "killed", 0: "SURVIVED"}.get(code, f"BROKEN (pytest exit {code})")
            print(f"{number:3d} {verdict:<10} {took:5.1f} s  {mutation.section:<8} {mutation.name}", flush=True)
            if verdict != "killed":
                failures.append(f"{mutation.name}: {verdict} (log: mutation-{number}.log)")
    finally:
        if not args.keep and not failures:
            shutil.rmtree(workdir, ignore_errors=True)
    total = time.monotonic() - started
    print(f"{len(chosen) - len(failures)} of {len(chosen)} mutations killed in {total / 60:.1f} min")
    if failures:
        print(f"not killed (copy kept at {workdir}):\n  " + "\n  ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
