"""Conversation requests, the stored conversation, usage and the response objects."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from .common import ApiModel, StrictModel, iso
from .entries import Entry
from .tools import CompletionArgs, GuardrailConfig, StoredGuardrails, Tool

Inputs = str | Annotated[list[Entry], Field(max_length=1000)]
HandoffExecution = Literal["client", "server"]


class ToolConfirmation(StrictModel):
    tool_call_id: str
    confirmation: Literal["allow", "deny"]


class StartConversationRequest(StrictModel):
    inputs: Inputs
    stream: bool = False
    store: bool | None = True
    handoff_execution: HandoffExecution | None = "server"
    agent_id: str | None = None
    agent_version: int | str | None = None
    model: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    instructions: Annotated[str, Field(max_length=100_000)] | None = None
    tools: list[Tool] | None = None
    completion_args: CompletionArgs | None = None
    guardrails: list[GuardrailConfig] | None = None
    name: Annotated[str, Field(max_length=256)] | None = None
    description: Annotated[str, Field(max_length=10_000)] | None = None
    metadata: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _agent_or_model(self) -> StartConversationRequest:
        if bool(self.agent_id) == bool(self.model):
            raise ValueError("exactly one of agent_id or model is required")
        if self.agent_id and (self.instructions is not None or self.tools is not None):
            raise ValueError("instructions and tools come from the agent when agent_id is given")
        return self


class AppendConversationRequest(StrictModel):
    inputs: Inputs | None = None
    stream: bool = False
    store: bool | None = True
    handoff_execution: HandoffExecution | None = "server"
    completion_args: CompletionArgs | None = None
    tool_confirmations: list[ToolConfirmation] | None = None


class RestartConversationRequest(StrictModel):
    from_entry_id: Annotated[str, Field(min_length=1)]
    inputs: Inputs | None = None
    stream: bool = False
    store: bool | None = True
    handoff_execution: HandoffExecution | None = "server"
    completion_args: CompletionArgs | None = None
    guardrails: list[GuardrailConfig] | None = None
    metadata: dict[str, Any] | None = None
    agent_version: int | str | None = None


class Conversation(ApiModel):
    """A stored conversation: who answers (agent or model settings) and its bookkeeping."""

    id: str
    created_at: datetime
    updated_at: datetime
    agent_id: str | None = None
    agent_version: int | None = None
    model: str | None = None
    instructions: str | None = None
    tools: list[Tool] = Field(default_factory=list)
    completion_args: CompletionArgs = Field(default_factory=CompletionArgs)
    guardrails: StoredGuardrails | None = None
    name: str | None = None
    description: str | None = None
    metadata: dict[str, Any] | None = None
    entry_count: int = 0
    pending_tool_call_ids: list[str] = Field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        common = {"object": "conversation", "id": self.id, "created_at": iso(self.created_at),
                  "updated_at": iso(self.updated_at), "name": self.name, "description": self.description,
                  "metadata": self.metadata}
        if self.agent_id:
            return {**common, "agent_id": self.agent_id, "agent_version": self.agent_version}
        return {**common, "model": self.model, "instructions": self.instructions,
                "tools": [t.model_dump(mode="json", exclude_none=True) for t in self.tools],
                "completion_args": self.completion_args.expanded(), "guardrails": self.guardrails}


class Usage(ApiModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    connector_tokens: int = 0
    connectors: dict[str, int] = Field(default_factory=dict)

    def add_model_call(self, prompt: int, completion: int) -> None:
        self.prompt_tokens += prompt
        self.completion_tokens += completion

    def add_connector_call(self, tool: str, tokens: int) -> None:
        self.connectors[tool] = self.connectors.get(tool, 0) + 1
        self.connector_tokens += tokens

    def to_api(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens + self.connector_tokens,
            "connector_tokens": self.connector_tokens,
            "connectors": dict(self.connectors) or None,
        }
