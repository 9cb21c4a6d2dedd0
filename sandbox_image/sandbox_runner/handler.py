"""Lambda entry point of the sandbox image: one execution per invocation.

The runner (and its zygote, which pre-imports numpy/pandas/matplotlib) is created at init, so
warm invocations only fork. A bad request gets a ``bad_request`` response, never an exception.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from .protocol import BadRequest, SandboxConfig, parse_request
from .runner import Runner, SandboxStartError, SandboxTainted

DEADLINE_MARGIN_S = 2.0  # leave time to kill, sweep and answer before Lambda's own timeout

_runner: Runner | None = None
_settings: SandboxConfig | None = None
# Set when processes of an execution survived every kill: the next invocation resets the host.
_exit_after_response = False


def _config() -> SandboxConfig:
    global _settings
    if _settings is None:
        _settings = SandboxConfig.from_env()
    return _settings


def get_runner() -> Runner:
    global _runner
    if _runner is None:
        runner = Runner(_config())
        runner.start()  # raises SandboxStartError: tried again at the next call
        _runner = runner
    return _runner


def handle(event: Any, remaining_s: float | None,
           on_output: Callable[[str, str], None] | None = None) -> dict[str, Any]:
    """Shared by the Lambda handler and the local worker (which alone passes ``on_output``: the
    cell's lines as they are printed)."""
    try:
        request = parse_request(event, _config())
    except BadRequest as exc:
        return {"status": "bad_request", "message": str(exc)}
    try:
        runner = get_runner()
    except SandboxStartError as exc:
        return {"status": "crashed", "message": str(exc), "outputs": [], "notes": [str(exc)]}
    deadline = None if remaining_s is None else remaining_s - DEADLINE_MARGIN_S
    global _exit_after_response
    try:
        return runner.execute(request, deadline_s=deadline, on_output=on_output)
    except BadRequest as exc:
        return {"status": "bad_request", "message": str(exc)}
    except SandboxTainted as tainted:
        # Something of the user's survived every kill or wipe: answer, then let the host reset us.
        _exit_after_response = True
        return tainted.response
    except Exception as exc:  # noqa: BLE001 - an unforeseen runner failure: answer, then reset
        _exit_after_response = True
        note = f"the sandbox failed ({type(exc).__name__}); it has been reset"
        return {"status": "crashed", "outputs": [], "notes": [note]}


def handler(event: Any, context: Any) -> dict[str, Any]:
    if _exit_after_response:
        # The previous invocation left processes we could not kill: reset the environment.
        sys.stderr.write("sandbox tainted by a previous execution; exiting so Lambda resets it\n")
        os._exit(1)
    remaining = context.get_remaining_time_in_millis() / 1000 if context is not None else None
    return handle(event, remaining)


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    # Pre-warm during init, where Lambda gives the CPU burst. A sandbox that cannot start (no
    # seccomp filter where one is required) must not fail the init: every invoke then answers why.
    try:
        get_runner()
    except SandboxStartError as exc:
        sys.stderr.write(f"sandbox not started: {exc}\n")
