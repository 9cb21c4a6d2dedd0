"""The build check (tools/build_check.py, in `make lint`) refuses a requirement set that has no
wheel for a target: here with a local index of made-up wheels, built for glibc 2.28 only, as
today's pyarrow, scikit-learn, statsmodels and Pillow are (Amazon Linux 2's glibc 2.26 cannot
take them). `make lint` runs it against PyPI for the real sets, and shows that python3.11 on
glibc 2.26 is refused."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tools.build_check import Target, resolves  # noqa: E402


def fake_wheel(folder: Path, name: str, version: str, tag: str) -> None:
    dist = f"{name.replace('-', '_')}-{version}"
    with zipfile.ZipFile(folder / f"{dist}-{tag}.whl", "w") as wheel:
        wheel.writestr(f"{name.replace('-', '_')}/__init__.py", "")
        wheel.writestr(f"{dist}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        python, abi, platform = tag.split("-")
        wheel.writestr(f"{dist}.dist-info/WHEEL", f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: {tag}\n")
        wheel.writestr(f"{dist}.dist-info/RECORD", "")


def test_a_set_without_a_wheel_for_the_target_is_refused_and_one_with_wheels_resolves(tmp_path: Path) -> None:
    index = tmp_path / "wheels"
    index.mkdir()
    for python in ("cp311", "cp313"):
        fake_wheel(index, "demo-native", "1.0", f"{python}-{python}-manylinux_2_28_x86_64")
    fake_wheel(index, "demo-pure", "2.0", "py3-none-any")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("demo-native==1.0\ndemo-pure==2.0\n")
    local = ["--no-index", "--find-links", str(index)]
    assert resolves(requirements, Target("3.13", "2.34", "x86_64"), local) == (True, "")
    refused, why = resolves(requirements, Target("3.11", "2.26", "x86_64"), local)  # Amazon Linux 2
    assert not refused and "demo-native==1.0" in why
    assert not resolves(requirements, Target("3.13", "2.34", "aarch64"), local)[0]  # no wheel for it at all
    requirements.write_text("demo-pure==2.0\n")
    assert resolves(requirements, Target("3.11", "2.26", "aarch64"), local)[0]  # pure Python goes anywhere


def test_a_glibc_takes_the_wheels_of_every_older_manylinux() -> None:
    platforms = Target("3.13", "2.34", "aarch64").platforms()
    assert platforms[0] == "manylinux_2_34_aarch64" and "manylinux_2_17_aarch64" in platforms
    assert platforms[-1] == "manylinux2014_aarch64" and "manylinux_2_35_aarch64" not in platforms
    assert "manylinux_2_28_x86_64" not in Target("3.11", "2.26", "x86_64").platforms()
