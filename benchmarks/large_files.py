"""Large files through `make serve` and the official SDK: upload, download and signed upload time, and
the server's peak memory (VmHWM), which must stay far below the file's size.

    .venv/bin/python benchmarks/large_files.py              # 512 MiB, FILES_MAX_BYTES's default
    .venv/bin/python benchmarks/large_files.py --size-mb 64
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "layers"))

import httpx  # noqa: E402
from mistralai.client import Mistral  # noqa: E402

from local.launcher import Server  # noqa: E402


def peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=512)
    args = parser.parse_args()
    size = args.size_mb << 20
    work = Path(tempfile.mkdtemp(prefix="large-files-"))
    source = work / "big.bin"
    digest = hashlib.sha256()
    with source.open("wb") as out:
        for _ in range(args.size_mb):
            chunk = os.urandom(1 << 20)
            digest.update(chunk)
            out.write(chunk)
    server = Server({"DATA_DIR": str(work / "data"), "SANDBOX_MODE": "disabled"})
    try:
        pid = server.process.pid
        client = Mistral(api_key="bench", server_url=server.url, timeout_ms=600_000)
        idle = peak_mib(pid)
        started = time.monotonic()
        with source.open("rb") as content:
            uploaded = client.files.upload(file={"file_name": "big.bin", "content": content})
        upload_s = time.monotonic() - started
        after_upload = peak_mib(pid)
        started = time.monotonic()
        received = hashlib.sha256()
        for chunk in client.files.download(file_id=uploaded.id).iter_bytes(1 << 20):
            received.update(chunk)
        download_s = time.monotonic() - started
        assert received.hexdigest() == digest.hexdigest(), "the downloaded bytes differ"
        after_download = peak_mib(pid)
        auth = {"Authorization": "Bearer bench"}
        announced = httpx.post(f"{server.url}/v1/files/uploads", headers=auth, timeout=30,
                               json={"filename": "signed.bin", "size": size}).json()
        started = time.monotonic()
        with source.open("rb") as content:
            posted = httpx.post(announced["url"], data=announced["fields"], files={"file": ("signed.bin", content)},
                                timeout=600)
        signed_s = time.monotonic() - started
        assert posted.status_code == 204, posted.text
        assert client.files.retrieve(file_id=announced["id"]).size_bytes == size
        after_signed = peak_mib(pid)
        rate = args.size_mb
        print(f"{args.size_mb} MiB file through make serve (embedded storage), the official SDK on the same machine:")
        print(f"  SDK upload:     {upload_s:6.2f} s  ({rate / upload_s:6.1f} MiB/s)")
        print(f"  SDK download:   {download_s:6.2f} s  ({rate / download_s:6.1f} MiB/s), bytes intact")
        print(f"  signed upload:  {signed_s:6.2f} s  ({rate / signed_s:6.1f} MiB/s, httpx POST to /_blobs/)")
        print(f"  server peak RSS (VmHWM): idle {idle:.0f} MiB, after upload {after_upload:.0f} MiB, "
              f"after download {after_download:.0f} MiB, after signed upload {after_signed:.0f} MiB")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
