"""Tool definitions and completion arguments (agents and model conversations share them)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field

from .common import StrictModel


class ToolConfiguration(StrictModel):
    exclude: list[str] | None = None
    include: list[str] | None = None
    requires_confirmation: list[str] | None = None


class CodeInterpreterTool(StrictModel):
    type: Literal["code_interpreter"]
    tool_configuration: ToolConfiguration | None = None


class BuiltinTool(StrictModel):
    """Accepted and stored; only code_interpreter is executed by this server."""

    type: Literal["web_search", "web_search_premium", "image_generation"]
    tool_configuration: ToolConfiguration | None = None


class DocumentLibraryTool(StrictModel):
    type: Literal["document_library"]
    library_ids: list[str]
    tool_configuration: ToolConfiguration | None = None


class FunctionDefinition(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_-]+$")]
    parameters: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None
    strict: bool = False


class FunctionTool(StrictModel):
    type: Literal["function"]
    function: FunctionDefinition


class ConnectorAuthorization(StrictModel):
    type: Literal["api-key", "oauth2-token"]
    value: str


class ConnectorTool(StrictModel):
    type: Literal["connector"]
    connector_id: str
    authorization: ConnectorAuthorization | None = None
    tool_configuration: ToolConfiguration | None = None


Tool = Annotated[
    Union[CodeInterpreterTool, BuiltinTool, DocumentLibraryTool, FunctionTool, ConnectorTool],
    Field(discriminator="type"),
]


class JsonSchema(StrictModel):
    name: str
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: bool = False  # a boolean in Mistral's description, false by default: never null


class ResponseFormat(StrictModel):
    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: JsonSchema | None = None


class Prediction(StrictModel):
    type: Literal["content"] = "content"
    content: str = ""


class CompletionArgs(StrictModel):
    stop: str | list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    max_tokens: Annotated[int, Field(ge=0)] | None = None
    random_seed: Annotated[int, Field(ge=0)] | None = None
    prediction: Prediction | None = None
    response_format: ResponseFormat | None = None
    tool_choice: Literal["auto", "none", "any", "required"] = "auto"
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None

    def expanded(self) -> dict[str, Any]:
        """Every key, nulls included, as the real API returns it."""
        return self.model_dump(mode="json", by_alias=True)


class GuardrailConfig(StrictModel):
    block_on_error: bool = False
    moderation_llm_v1: dict[str, Any] | None = None
    moderation_llm_v2: dict[str, Any] | None = None
