"""An analyst's session at real size, through the official SDK against `make serve` (issue 13):

1. a 200 MB CSV is uploaded;
2. one turn reads it with pandas;
3. the next turn uses the DataFrame without re-reading it (the file is deleted first to be sure),
   with no note about dropped state;
4. a turn writes a 50 MB file, which is downloaded and checked.

Prints the time of each step and the server's peak memory.

    .venv/bin/python benchmarks/real_data.py [--csv-mb 200]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "layers"))

from mistralai.client import Mistral  # noqa: E402

from local.launcher import Server  # noqa: E402


def code(text: str) -> str:
    return f"```python\n{text}\n```"


def output(response: object) -> str:
    return "".join(o.info["code_output"] for o in response.outputs if o.type == "tool.execution")  # type: ignore[attr-defined]


def csv_of(megabytes: int) -> tuple[bytes, int, int]:
    """A numeric CSV of ``megabytes`` MB (floats written with six decimals, as exports have them):
    its bytes, its rows and the sum of column b. Its DataFrame is about half its size."""
    lines, size, total = [b"a,b,x,y\n"], 0, 0
    while size < megabytes * 1_000_000:
        i = len(lines)
        line = b"%d,%d,%.6f,%.6f\n" % (i, i % 97, (i * 7919 % 1_000_003) / 7, (i % 10_007) / 3)
        lines.append(line)
        size += len(line)
        total += i % 97
    return b"".join(lines), len(lines) - 1, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--csv-mb", type=int, default=200)
    args = parser.parse_args()
    data, rows, total = csv_of(args.csv_mb)
    work = Path(tempfile.mkdtemp(prefix="real-data-"))
    server = Server({"DATA_DIR": str(work / "data"), "SANDBOX_TIMEOUT_S": "120", "SANDBOX_WORKERS": "2"})
    try:
        client = Mistral(api_key="bench", server_url=server.url, timeout_ms=600_000)
        timings: dict[str, float] = {}

        def step(name: str, action):  # type: ignore[no-untyped-def]
            started = time.monotonic()
            value = action()
            timings[name] = time.monotonic() - started
            return value

        uploaded = step("upload", lambda: client.files.upload(file={"file_name": "data.csv", "content": data}))
        first = step("turn 1: read_csv", lambda: client.beta.conversations.start(
            model="m", tools=[{"type": "code_interpreter"}], inputs=[{"role": "user", "content": [
                {"type": "text", "text": code("import pandas as pd\ndf = pd.read_csv('data.csv')\nprint(len(df), df.b.sum())")},
                {"type": "tool_file", "tool": "code_interpreter", "file_id": uploaded.id, "file_name": "data.csv"}]}]))
        assert output(first) == f"{rows} {total}\n", output(first)
        second = step("turn 2: reuse df", lambda: client.beta.conversations.append(
            conversation_id=first.conversation_id,
            inputs=code("import os\nos.remove('data.csv')\nprint(len(df), int(df.b.sum()))")))
        assert output(second) == f"{rows} {total}\n", output(second)
        third = step("turn 3: write 50 MB", lambda: client.beta.conversations.append(
            conversation_id=first.conversation_id,
            inputs=code("import hashlib, os\nblob = os.urandom(50_000_000)\nopen('out.bin', 'wb').write(blob)\n"
                        "print(hashlib.sha256(blob).hexdigest())\ndel blob")))
        digest = output(third).split()[0]
        chunk = next(c for c in third.outputs[-1].content if getattr(c, "type", None) == "tool_file")
        body = step("download 50 MB", lambda: client.files.download(file_id=chunk.file_id).read())
        assert hashlib.sha256(body).hexdigest() == digest
        peak = next(int(line.split()[1]) for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines()
                    if line.startswith("VmHWM:"))
        print(f"CSV: {len(data) / 1e6:.0f} MB, {rows:,} rows; no state dropped: {'not carried' not in output(second)}")
        for name, seconds in timings.items():
            print(f"{name:>22}: {seconds:6.2f} s")
        print(f"{'server peak memory':>22}: {peak / 1024:6.0f} MiB")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
