"""`make lint`: `sam build` builds the layer and every zip function on this machine, with only
Python 3.11 and no Docker (BuildMethod: makefile; layers/Makefile, functions/Makefile.function).
The sandbox image is the one part that needs Docker (`sam build SandboxFunction`).

    .venv-sam/bin/python tools/sam_build.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def zip_parts() -> list[str]:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)  # CloudFormation tags: not needed here
    resources = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)["Resources"]  # noqa: S506
    return [name for name, r in resources.items()
            if r["Type"] == "AWS::Serverless::LayerVersion"
            or (r["Type"] == "AWS::Serverless::Function" and r["Properties"].get("PackageType") != "Image")]


def without_images(text: str, images: list[str]) -> str:
    """The template minus its image functions (the one part `sam build` needs Docker for); what
    still refers to them is left as is, which the build does not resolve."""
    lines, keep, skipping = text.splitlines(keepends=True), [], False
    for line in lines:
        if line.startswith("  ") and not line.startswith("   ") and line.rstrip().endswith(":"):
            skipping = line.strip().rstrip(":") in images
        if not skipping:
            keep.append(line)
    return "".join(keep)


def main() -> int:
    import yaml  # noqa: F401 - the template reader below needs it

    sam = Path(sys.executable).with_name("sam")
    parts = zip_parts()
    with tempfile.TemporaryDirectory(prefix="agents-sam-build-") as scratch:
        template = ROOT / ".sam-build-template.yaml"  # beside the original: CodeUri paths stay relative
        template.write_text(without_images((ROOT / "template.yaml").read_text(), ["SandboxFunction"]))
        try:
            done = subprocess.run([str(sam), "build", "--template-file", str(template), "--build-dir",
                                   str(Path(scratch) / "build")], cwd=ROOT, capture_output=True, text=True,
                                  env={**os.environ, "SAM_CLI_TELEMETRY": "0"})
        finally:
            template.unlink(missing_ok=True)
        failures = [] if done.returncode == 0 else ["sam build"]
        for name in parts:
            built = Path(scratch) / "build" / name
            ok = built.is_dir() and any(built.iterdir())
            if ok and name == "SharedLayer":  # the compiled modules of both architectures, and the package
                names = {p.name for p in built.rglob("*.so")}
                ok = {"_pydantic_core.cpython-313-x86_64-linux-gnu.so", "_pydantic_core.cpython-313-aarch64-linux-gnu.so"} \
                    <= names and (built / "python" / "agentsapi" / "services.py").is_file()
            elif ok:
                ok = (built / "app.py").is_file()
            print(f"{'built ' if ok else 'FAILED'} {name}")
            if not ok:
                failures.append(name)
        if failures:
            print(done.stdout[-3000:], done.stderr[-3000:])
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
