"""Conversation entries and content chunks, in the shapes the official SDK parses.

Input entries (what a client sends) are strict but accept the ``object``/``type``/``prefix``
keys the SDK adds. Stored entries always carry ``object: "entry"``, an id, and for
``tool.execution`` a string ``arguments`` (without it the SDK rejects the whole response).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, Discriminator, Field, Tag, ValidationInfo
from pydantic_core import PydanticCustomError

from .common import ApiModel, ClientFileName, ServerOnly, StrictModel, from_client, iso

# -- content chunks ---------------------------------------------------------------------------


class TextChunk(StrictModel):
    type: Literal["text"] = "text"
    text: str


class ToolFileChunk(StrictModel):
    type: Literal["tool_file"] = "tool_file"
    tool: str
    file_id: str
    file_name: ClientFileName | None = None
    file_type: str | None = None


class ToolReferenceChunk(StrictModel):
    type: Literal["tool_reference"] = "tool_reference"
    tool: str
    title: str
    url: str | None = None
    favicon: str | None = None
    description: str | None = None


class ImageUrl(StrictModel):
    url: str
    detail: Literal["low", "auto", "high"] | None = None


class ImageUrlChunk(StrictModel):
    type: Literal["image_url"] = "image_url"
    image_url: str | ImageUrl


class DocumentUrlChunk(StrictModel):
    type: Literal["document_url"] = "document_url"
    document_url: str
    document_name: str | None = None


class FileChunk(StrictModel):
    """A file uploaded through the Files API, handed to the code: it appears in the working directory."""

    type: Literal["file"] = "file"
    file_id: str


class ThinkingChunk(StrictModel):
    type: Literal["thinking"] = "thinking"
    thinking: list[Union[TextChunk, ToolReferenceChunk]]
    signature: str | None = None
    closed: bool | None = None


Chunk = Annotated[
    Union[TextChunk, ToolFileChunk, ToolReferenceChunk, ImageUrlChunk, DocumentUrlChunk, ThinkingChunk, FileChunk],
    Field(discriminator="type"),
]
Content = Union[Annotated[str, Field(max_length=1_000_000)], list[Chunk]]


def content_text(content: str | list[Any]) -> str:
    """The plain text of a content value (what a model reads)."""
    if isinstance(content, str):
        return content
    parts = []
    for chunk in content:
        if isinstance(chunk, TextChunk):
            parts.append(chunk.text)
        elif isinstance(chunk, ToolFileChunk):
            parts.append(f"[file {chunk.file_name or chunk.file_id}]")
        elif isinstance(chunk, FileChunk):
            parts.append(f"[file {chunk.file_id} is available to code_interpreter in its working directory]")
    return "".join(parts)


# -- entries ----------------------------------------------------------------------------------


class EntryBase(StrictModel):
    object: Literal["entry"] = "entry"
    id: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None


class MessageInputEntry(EntryBase):
    type: Literal["message.input"] = "message.input"
    role: Literal["user", "assistant"] = "user"
    content: Content
    prefix: bool = False


class MessageOutputEntry(EntryBase):
    type: Literal["message.output"] = "message.output"
    role: Literal["assistant"] = "assistant"
    content: Content
    agent_id: str | None = None
    model: str | None = None


class FunctionResultEntry(EntryBase):
    type: Literal["function.result"] = "function.result"
    tool_call_id: Annotated[str, Field(min_length=1)]
    result: str


def _pending_only_from_the_server(value: str | None, info: ValidationInfo) -> str | None:
    # A pending call is one the server holds for the user's confirmation, and confirming it runs
    # its arguments as code: only the model's own calls may be pending, never one a client sends.
    if value == "pending" and from_client(info):
        raise PydanticCustomError("server_only", "only the server marks a tool call as waiting for confirmation")
    return value


class FunctionCallEntry(EntryBase):
    type: Literal["function.call"] = "function.call"
    tool_call_id: str
    name: str
    arguments: str | dict[str, Any]
    agent_id: str | None = None
    model: str | None = None
    confirmation_status: Annotated[Literal["pending", "allowed", "denied"] | None,
                                   AfterValidator(_pending_only_from_the_server)] = None


class ToolExecutionEntry(EntryBase):
    type: Literal["tool.execution"] = "tool.execution"
    name: str
    arguments: str = ""
    # Set when the execution answers a function.call that waited for the user's confirmation.
    tool_call_id: str | None = None
    # Where the interpreter session's state after this execution is kept: internal, never sent,
    # and refused in client input (a client naming storage could load another tenant's blob).
    session_ref: Annotated[str | None, ServerOnly] = None
    function: str | None = None
    info: dict[str, Any] = Field(default_factory=dict)
    agent_id: str | None = None
    model: str | None = None


class AgentHandoffEntry(EntryBase):
    type: Literal["agent.handoff"] = "agent.handoff"
    previous_agent_id: str
    previous_agent_name: str
    next_agent_id: str
    next_agent_name: str


def _entry_tag(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("type") or ("function.result" if "tool_call_id" in value and "result" in value else "message.input")
    return getattr(value, "type", "message.input")


Entry = Annotated[
    Union[
        Annotated[MessageInputEntry, Tag("message.input")],
        Annotated[MessageOutputEntry, Tag("message.output")],
        Annotated[FunctionResultEntry, Tag("function.result")],
        Annotated[FunctionCallEntry, Tag("function.call")],
        Annotated[ToolExecutionEntry, Tag("tool.execution")],
        Annotated[AgentHandoffEntry, Tag("agent.handoff")],
    ],
    Discriminator(_entry_tag),
]

ENTRY_ID_PREFIX = {
    "message.input": "msg_",
    "message.output": "msg_",
    "function.result": "fr_",
    "function.call": "fc_",
    "tool.execution": "tool_exec_",
    "agent.handoff": "handoff_",
}


def entry_to_api(entry: Any) -> dict[str, Any]:
    """An entry as the SDK expects it on the wire (ISO timestamps, nothing missing)."""
    data = entry.model_dump(mode="json", exclude_none=False, exclude={"session_ref"})
    for key in ("created_at", "completed_at"):
        value = getattr(entry, key)
        data[key] = iso(value) if value is not None else None
    if data.get("type") == "tool.execution":
        if not isinstance(data.get("arguments"), str):
            data["arguments"] = ""
        # Mistral's description has no tool_call_id here (ours answers a confirmed call: only then
        # sent), and the real API names the tool again as "function".
        if data.get("tool_call_id") is None:
            data.pop("tool_call_id", None)
        if data.get("function") is None:
            data["function"] = data.get("name")
    return data


# Stored entries always carry their ``type`` (they are dumps of the models above), so reading
# them back can use pydantic's plain discriminator, about 3x faster than Entry's callable one
# (which also accepts client input without a type). Every turn reads its conversation's history.
_StoredEntryUnion = Annotated[
    Union[MessageInputEntry, MessageOutputEntry, FunctionResultEntry, FunctionCallEntry, ToolExecutionEntry,
          AgentHandoffEntry],
    Field(discriminator="type"),
]


class StoredEntry(ApiModel):
    """The envelope in which an entry is stored (keeps the entry's own validation)."""

    entry: _StoredEntryUnion
