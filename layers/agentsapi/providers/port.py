"""The model-provider port: a streaming chat call with tools, in provider-neutral types."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Union


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model wrote it


@dataclass(frozen=True)
class ModelMessage:
    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ModelRequest:
    model: str
    messages: list[ModelMessage]
    tools: list[ToolSpec] = field(default_factory=list)
    completion_args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of a tool call: ``id`` and ``name`` arrive first, ``arguments`` in fragments."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class UsageReport:
    prompt_tokens: int
    completion_tokens: int


ModelEvent = Union[TextDelta, ToolCallDelta, UsageReport]


class ModelProvider(Protocol):
    def stream(self, request: ModelRequest) -> Iterator[ModelEvent]:
        """One model step. Ends after the text answer, or after the tool calls the model wants."""
        ...


CODE_INTERPRETER_SPEC = ToolSpec(
    name="code_interpreter",
    description="Run Python code in a sandbox (numpy, pandas, matplotlib, scipy, sympy available) and get its output.",
    parameters={"type": "object", "properties": {"code": {"type": "string", "description": "The Python code to run"}},
                "required": ["code"]},
)


def estimate_tokens(text: str) -> int:
    """A rough count (about four characters a token) for when no provider reports usage."""
    return (len(text) + 3) // 4 if text else 0
