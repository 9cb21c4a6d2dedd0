"""Agent requests, the stored agent (one item per version) and the Agent response."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from .common import ApiModel, StrictModel, iso
from .tools import CompletionArgs, GuardrailConfig, StoredGuardrails, Tool

AliasName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z]([a-z0-9_-]*[a-z0-9])?$")]
Name = Annotated[str, Field(min_length=1, max_length=256)]
LongText = Annotated[str, Field(max_length=100_000)]


class CreateAgentRequest(StrictModel):
    model: Name
    name: Name
    instructions: LongText | None = None
    description: LongText | None = None
    tools: Annotated[list[Tool], Field(max_length=128)] | None = None
    completion_args: CompletionArgs | None = None
    handoffs: Annotated[list[str], Field(min_length=1, max_length=64)] | None = None
    metadata: dict[str, Any] | None = None
    guardrails: list[GuardrailConfig] | None = None
    version_message: Annotated[str, Field(max_length=500)] | None = None


class UpdateAgentRequest(StrictModel):
    model: Name | None = None
    name: Name | None = None
    instructions: LongText | None = None
    description: LongText | None = None
    tools: Annotated[list[Tool], Field(max_length=128)] | None = None
    completion_args: CompletionArgs | None = None
    handoffs: Annotated[list[str], Field(min_length=1, max_length=64)] | None = None
    metadata: dict[str, Any] | None = None
    guardrails: list[GuardrailConfig] | None = None
    version_message: Annotated[str, Field(max_length=500)] | None = None
    deployment_chat: bool | None = None


class SwitchVersionBody(StrictModel):
    version: int | None = None


class AgentVersion(ApiModel):
    """One immutable version of an agent's settings (stored)."""

    id: str
    version: int
    model: str
    name: str
    instructions: str | None = None
    description: str | None = None
    tools: list[Tool] = Field(default_factory=list)
    completion_args: CompletionArgs = Field(default_factory=CompletionArgs)
    handoffs: list[str] | None = None
    metadata: dict[str, Any] | None = None
    guardrails: StoredGuardrails = Field(default_factory=list)
    version_message: str | None = None
    deployment_chat: bool = False
    created_at: datetime


class AgentHead(ApiModel):
    """The agent's pointer item: which version is active and how many exist (stored)."""

    id: str
    active_version: int
    latest_version: int
    created_at: datetime
    updated_at: datetime


class AgentAlias(ApiModel):
    alias: str
    version: int
    created_at: datetime
    updated_at: datetime

    def to_api(self) -> dict[str, Any]:
        return {"alias": self.alias, "version": self.version, "created_at": iso(self.created_at),
                "updated_at": iso(self.updated_at)}


def agent_response(head: AgentHead, version: AgentVersion, as_version: bool = False) -> dict[str, Any]:
    """The Agent object: ``versions``, ``deployment_chat`` and ``source`` are required by the SDK.
    ``as_version``: one version read as such (the versions list, a version by number or alias):
    its ``updated_at`` is when that version was made, not when the agent last changed."""
    return {
        "object": "agent",
        "id": head.id,
        "model": version.model,
        "name": version.name,
        "instructions": version.instructions,
        "description": version.description,
        "tools": [t.model_dump(mode="json", exclude_none=True) for t in version.tools],
        "completion_args": version.completion_args.expanded(),
        "handoffs": version.handoffs,
        "metadata": version.metadata,
        "guardrails": list(version.guardrails),
        "version": version.version,
        "versions": list(range(head.latest_version + 1)),
        "version_message": version.version_message,
        "deployment_chat": version.deployment_chat,
        "source": "api",
        "created_at": iso(head.created_at),
        "updated_at": iso(version.created_at if as_version else max(head.updated_at, version.created_at)),
    }


AgentSource = Literal["api", "playground", "agent_builder_v1"]
AGENT_SOURCES = ("api", "playground", "agent_builder_v1")  # the description's RequestSource
