"""The sandbox's JSON protocol and its limits. This module is the contract with the API side.

Request (the Lambda event, or one line on the local worker's stdin)::

    {"code": "print(1)",                 # required, the cell to run
     "timeout_s": 10,                    # optional, capped by SANDBOX_TIMEOUT_S
     "files": [{"name": "data.csv", "content_b64": "..." | "ref": "..."}],   # optional input files
     "session": {"state_b64" | "state_ref": "..." | null},   # optional: carry state (null: start one)
     "exchange": {"dir": "<id>"} | {"outputs": [url...], "session": url, "resolve": {...}},
         # optional: data by reference instead of base64 (see exchange.py); refs name inputs there
     "room_bytes": 1048576}              # optional: what the caller may still store; the files and
                                         # the session state handed back stay within it

Response::

    {"status": "ok" | "error" | "timeout" | "memory" | "output_truncated" | "crashed",
     "outputs": [{"stream": "stdout" | "stderr", "text": "..."}],   # in the order written
     "stdout": "...", "stderr": "...",
     "display": "42" | null,             # repr of a trailing expression, as Jupyter shows it
     "table": {"columns": [...], "index": [...], "rows": [[...]], "shape": [rows, columns],
               "index_name": ""} | null,  # a trailing DataFrame's first rows, every cell as text
     "error": {"name": "...", "value": "...", "traceback": "..."} | null,
     "exit_code": 0 | null, "signal": null | 9,
     "duration_ms": 12.5, "max_rss_kb": 51234,
     "files": [{"name": "plot_0.png", "mime_type": "image/png", "size": 1234,
                "content_b64": "..." | "ref": "out/0"}],   # ref: with an exchange
     "notes": ["output truncated at 100000 bytes", ...],   # every limit hit says so here
     "session": {"state_b64" | "ref": "...", "bytes": 1234} | null,   # when the request asked for one
     "isolation": {"seccomp": true, "non_dumpable": true, ...}}
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field
from typing import Any

STATUSES = ("ok", "error", "timeout", "memory", "output_truncated", "crashed")
MAX_CODE_BYTES = 256 * 1024
MAX_INPUT_FILES = 20


class BadRequest(ValueError):
    """The request does not follow the protocol; the message names the field."""


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass(frozen=True)
class SandboxConfig:
    """Limits and paths, read once from the environment at start-up."""

    timeout_s: float = 30.0
    memory_mb: int = 1024
    max_output_bytes: int = 100_000
    # Any one file the code writes (RLIMIT_FSIZE): the Files API's own limit.
    max_file_bytes: int = 512 * 1024 * 1024
    max_returned_files: int = 10
    # By reference (an exchange in the request): what one execution may take in and hand back.
    max_input_bytes: int = 1024 * 1024 * 1024
    max_returned_bytes: int = 1024 * 1024 * 1024
    max_session_bytes: int = 256 * 1024 * 1024
    # Inline (base64 in the request and response): files and session state share Lambda's 6 MB
    # response, 1.5 + 2.5 MiB.
    max_inline_returned_bytes: int = 3 * 512 * 1024
    max_inline_session_bytes: int = 5 * 512 * 1024
    # Locally: the directory, on the work root's file system, where inputs and outputs are
    # exchanged by reference (None: no directory exchange).
    exchange_dir: str | None = None
    open_files: int = 256
    processes: int = 64
    work_root: str = "/tmp/sbx"
    scratch_dirs: tuple[str, ...] = ("/tmp", "/dev/shm", "/var/tmp")
    # In Lambda a reset keeps /tmp: start from an empty scratch area (set in the image).
    wipe_scratch_at_init: bool = False
    # No code runs without the seccomp filter (it is what keeps user code away from the
    # processes that outlive it). Switch off only where the kernel refuses nested filters, and
    # read docs/security.md first.
    require_seccomp: bool = True
    # Warm each spare child (a typical pandas/matplotlib cell) while it waits: data cells get
    # several times faster, at the cost of ~50 MB of private memory while idle.
    warm_spare: bool = True
    # A matplotlib config dir with a prebuilt font cache (the image builds one); None: a fresh
    # one under work_root, built when the zygote starts (about a second).
    mpl_config_dir: str | None = None
    # Pre-imported by the zygote, so no cell pays for them (IPython's pretty printer is loaded on
    # its own as well, see cell.load_pretty). Decided by benchmarks/preload_costs.py: a preloaded
    # library adds its memory to the zygote and to the cost of every fork, so the heavy, less
    # common ones (seaborn, scikit-learn, statsmodels: 0.6-1.1 s, 60-95 MB each) are imported by
    # the cells that use them.
    preload: tuple[str, ...] = ("numpy", "pandas", "matplotlib.pyplot", "scipy", "sympy", "cloudpickle")

    @classmethod
    def from_env(cls) -> SandboxConfig:
        preload = os.environ.get("SANDBOX_PRELOAD")
        return cls(
            timeout_s=_env_float("SANDBOX_TIMEOUT_S", cls.timeout_s),
            memory_mb=_memory_mb(cls.memory_mb),
            max_output_bytes=_env_int("SANDBOX_MAX_OUTPUT_BYTES", cls.max_output_bytes),
            max_file_bytes=_env_int("SANDBOX_MAX_FILE_BYTES", cls.max_file_bytes),
            max_returned_files=_env_int("SANDBOX_MAX_RETURNED_FILES", cls.max_returned_files),
            max_returned_bytes=_env_int("SANDBOX_MAX_RETURNED_BYTES", cls.max_returned_bytes),
            max_session_bytes=_env_int("SANDBOX_MAX_SESSION_BYTES", cls.max_session_bytes),
            max_input_bytes=_env_int("SANDBOX_MAX_INPUT_BYTES", cls.max_input_bytes),
            exchange_dir=os.environ.get("SANDBOX_EXCHANGE_DIR") or None,
            open_files=_env_int("SANDBOX_OPEN_FILES", cls.open_files),
            processes=_env_int("SANDBOX_PROCESSES", cls.processes),
            work_root=os.environ.get("SANDBOX_WORK_ROOT", cls.work_root),
            wipe_scratch_at_init=os.environ.get("SANDBOX_WIPE_SCRATCH_AT_INIT", "") == "1",
            warm_spare=os.environ.get("SANDBOX_WARM_SPARE", "1") == "1",
            require_seccomp=os.environ.get("SANDBOX_REQUIRE_SECCOMP", "1") == "1",
            mpl_config_dir=os.environ.get("SANDBOX_MPLCONFIGDIR") or None,
            scratch_dirs=tuple(d for d in os.environ.get("SANDBOX_SCRATCH_DIRS", ",".join(cls.scratch_dirs)).split(",") if d),
            preload=tuple(p for p in preload.split(",") if p) if preload is not None else cls.preload,
        )


@dataclass(frozen=True)
class InputFile:
    name: str
    content: bytes = b""
    ref: str | None = None  # by reference, through the request's exchange


@dataclass(frozen=True)
class ExecutionRequest:
    code: str
    timeout_s: float
    files: tuple[InputFile, ...] = field(default=())
    session: bool = False  # carry state: restore ``state`` (if any) and return the new one
    state: bytes | None = None
    state_ref: str | None = None
    exchange: dict[str, Any] | None = None  # data by reference (exchange.py); None: inline
    # What the caller's workspace may still store: files and state handed back stay within it,
    # so that a cell cannot make the host copy (and a sparse file amplify) more than it may keep.
    room_bytes: int | None = None


MAX_NAME_BYTES = 255  # what Linux file systems take (NAME_MAX), counted in UTF-8


def _safe_name(name: object, where: str) -> str:
    if not isinstance(name, str) or not name:
        raise BadRequest(f"{where}.name must be a non-empty string")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadRequest(f"{where}.name must be valid UTF-8") from exc
    if len(encoded) > MAX_NAME_BYTES:
        raise BadRequest(f"{where}.name must be at most {MAX_NAME_BYTES} bytes in UTF-8 (it has {len(encoded)})")
    if "/" in name or "\0" in name or name in (".", ".."):
        raise BadRequest(f"{where}.name must be a plain file name, not a path")
    return name


def parse_request(raw: object, config: SandboxConfig) -> ExecutionRequest:
    if not isinstance(raw, dict):
        raise BadRequest("the request must be a JSON object")
    code = raw.get("code")
    if not isinstance(code, str):
        raise BadRequest("code must be a string")
    if len(code.encode("utf-8", "replace")) > MAX_CODE_BYTES:
        raise BadRequest(f"code is longer than {MAX_CODE_BYTES} bytes")
    timeout = raw.get("timeout_s", config.timeout_s)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        raise BadRequest("timeout_s must be a positive number")
    files_raw = raw.get("files") or []
    if not isinstance(files_raw, list) or len(files_raw) > MAX_INPUT_FILES:
        raise BadRequest(f"files must be a list of at most {MAX_INPUT_FILES} items")
    files = []
    for index, item in enumerate(files_raw):
        where = f"files[{index}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{where} must be an object")
        name = _safe_name(item.get("name"), where)
        if name in {f.name for f in files}:
            raise BadRequest(f"{where}.name repeats the name of an earlier file")
        ref = item.get("ref")
        if ref is not None:
            if not isinstance(ref, str) or not ref:
                raise BadRequest(f"{where}.ref must be a non-empty string")
            files.append(InputFile(name, ref=ref))
            continue
        try:
            content = base64.b64decode(item.get("content_b64", ""), validate=True)
        except (binascii.Error, TypeError) as exc:
            raise BadRequest(f"{where}.content_b64 must be base64") from exc
        files.append(InputFile(name, content))
    session_raw = raw.get("session")
    state, state_ref = None, None
    if session_raw is not None:
        if not isinstance(session_raw, dict):
            raise BadRequest("session must be an object")
        encoded, state_ref = session_raw.get("state_b64"), session_raw.get("state_ref")
        if state_ref is not None and not (isinstance(state_ref, str) and state_ref):
            raise BadRequest("session.state_ref must be a non-empty string")
        if encoded is not None:
            try:
                state = base64.b64decode(encoded, validate=True)
            except (binascii.Error, TypeError) as exc:
                raise BadRequest("session.state_b64 must be base64") from exc
    exchange = raw.get("exchange")
    if exchange is not None and not isinstance(exchange, dict):
        raise BadRequest("exchange must be an object")
    if exchange is None and (state_ref or any(f.ref for f in files)):
        raise BadRequest("refs need an exchange: give the request's exchange field")
    room = raw.get("room_bytes")
    if room is not None and (not isinstance(room, int) or isinstance(room, bool) or room < 0):
        raise BadRequest("room_bytes must be a non-negative integer")
    return ExecutionRequest(code=code, timeout_s=min(float(timeout), config.timeout_s), files=tuple(files),
                            session=session_raw is not None, state=state, state_ref=state_ref, exchange=exchange,
                            room_bytes=room)


def _memory_mb(default: int) -> int:
    """The child's address-space cap. In Lambda: half the function's memory (the runner, the
    zygote and the warm spare live in the rest), or SANDBOX_MEMORY_MB if that is lower."""
    configured = _env_int("SANDBOX_MEMORY_MB", 0)
    function_mb = _env_int("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 0)
    if function_mb:
        return min(configured, function_mb // 2) if configured else function_mb // 2
    return configured or default
