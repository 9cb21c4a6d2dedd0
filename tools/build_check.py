"""`make lint`'s build check: every requirement set resolves to binary wheels for every target.

Lambda builds nothing from source: the layer is pip-installed here for another platform, and the
sandbox image's base has no compiler. So each set (the layer's, the sandbox image's) must resolve,
wheels only, for CPython 3.13 on Amazon Linux 2023 (glibc 2.34) on both architectures. pip
resolves without installing (``--dry-run``; wheel metadata only where the index serves it).

    .venv/bin/python tools/build_check.py                       # the targets the stack uses
    .venv/bin/python tools/build_check.py --python 3.11 --glibc 2.26 --expect-failure
        # the old target (python3.11 on Amazon Linux 2): today's pins must be refused there
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENT_SETS = ("layers/requirements.txt", "sandbox_image/requirements.txt")
ARCHES = ("x86_64", "aarch64")


@dataclass(frozen=True)
class Target:
    python: str  # "3.13"
    glibc: str  # "2.34": manylinux wheels for this glibc and every older one install there
    arch: str

    def platforms(self) -> list[str]:
        """pip's --platform list: it takes the tags as given and does not widen them itself."""
        major, minor = (int(part) for part in self.glibc.split("."))
        tags = [f"manylinux_{major}_{m}_{self.arch}" for m in range(minor, 16, -1)]
        return [*tags, f"manylinux2014_{self.arch}"] if minor >= 17 else tags

    def __str__(self) -> str:
        return f"CPython {self.python}, glibc {self.glibc}, {self.arch}"


def resolves(requirements: Path, target: Target, index: list[str] | None = None) -> tuple[bool, str]:
    """Whether ``requirements`` resolves to wheels only for ``target``; pip's last words if not."""
    with tempfile.TemporaryDirectory(prefix="agents-build-check-") as scratch:
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--disable-pip-version-check",
                   "--ignore-installed", "--only-binary=:all:", "--implementation", "cp",
                   "--python-version", target.python, "--target", scratch,
                   *[flag for platform in target.platforms() for flag in ("--platform", platform)],
                   *(index or []), "-r", str(requirements)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    return done.returncode == 0, "; ".join(errors)[:500]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default="3.13")
    parser.add_argument("--glibc", default="2.34")
    parser.add_argument("--expect-failure", action="store_true",
                        help="succeed only if some set does NOT resolve (shows the check can refuse)")
    parser.add_argument("requirements", nargs="*", default=list(REQUIREMENT_SETS))
    args = parser.parse_args(argv)
    failed = 0
    for name in args.requirements:
        for arch in ARCHES:
            target = Target(args.python, args.glibc, arch)
            ok, why = resolves(ROOT / name, target)
            failed += not ok
            print(f"{'resolves' if ok else 'REFUSED '}  {name}  for {target}" + ("" if ok else f": {why}"))
    if args.expect_failure:
        print("as expected: refused" if failed else "UNEXPECTED: everything resolved")
        return 0 if failed else 1
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
