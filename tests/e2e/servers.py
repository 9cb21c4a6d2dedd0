"""Helpers for tests that start a `make serve` of their own (the ``serve`` fixture in conftest.py):
two tenants' keys, a client per key, and a request body that runs one cell."""

from __future__ import annotations

import resource
import tempfile

import httpx

from local.launcher import Server

A_KEY, B_KEY = "review-key-A", "review-key-B"


def start_server(env: dict[str, str], nofile: int | None = None, data_dir: str | None = None) -> Server:
    """A `make serve` on a fresh DATA_DIR (or ``data_dir``), with ``nofile`` as its open-files limit."""
    data_dir = data_dir or tempfile.mkdtemp(prefix="agents-review-")
    full = {"DATA_DIR": data_dir, "SANDBOX_WORKERS": "2", **env}
    saved = resource.getrlimit(resource.RLIMIT_NOFILE)
    if nofile is not None:  # the child inherits it: Debian's default soft limit for a service
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, saved[1]))
    try:
        server = Server(full, log_path=f"{data_dir.rstrip('/')}.log")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, saved)
    server.data_dir = data_dir  # type: ignore[attr-defined]
    return server


def client(server: Server, key: str, timeout: float = 60) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=timeout)


def code_turn(source: str) -> dict[str, object]:
    """A conversation start whose offline model runs ``source`` as one cell."""
    return {"model": "m", "tools": [{"type": "code_interpreter"}], "inputs": f"```python\n{source}\n```"}
