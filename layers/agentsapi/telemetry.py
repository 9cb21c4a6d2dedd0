"""The telemetry port: what the runtime reports about each model call and code execution.

The domain calls these with plain numbers; ``adapters/powertools_telemetry.py`` turns them into
CloudWatch metrics (EMF) and log lines. Nothing here ever carries code, code output or inputs.
"""

from __future__ import annotations

from typing import Protocol

# Sandbox statuses folded into the outcomes operators alarm on.
OUTCOMES = {"ok": "ok", "error": "error", "timeout": "timeout", "memory": "memory", "output_truncated": "ok"}


def outcome_of(status: str) -> str:
    """ok / error / timeout / memory, or ``failed`` when the sandbox itself broke (crashed, unavailable)."""
    return OUTCOMES.get(status, "failed")


class Telemetry(Protocol):
    def code_execution(self, status: str, latency_ms: float, sandbox_ms: float) -> None: ...
    def model_call(self, model: str, prompt_tokens: int, completion_tokens: int, latency_ms: float) -> None: ...
    def model_error(self, model: str, error_type: str, status: int) -> None: ...


class NullTelemetry:
    def code_execution(self, status: str, latency_ms: float, sandbox_ms: float) -> None:
        return None

    def model_call(self, model: str, prompt_tokens: int, completion_tokens: int, latency_ms: float) -> None:
        return None

    def model_error(self, model: str, error_type: str, status: int) -> None:
        return None
