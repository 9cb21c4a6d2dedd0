"""Tool definitions and completion arguments (agents and model conversations share them)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, Field

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


Threshold = float | None  # a score above it triggers the action (the description gives no bounds)


class ModerationV1Thresholds(StrictModel):
    sexual: Threshold = None
    hate_and_discrimination: Threshold = None
    violence_and_threats: Threshold = None
    dangerous_and_criminal_content: Threshold = None
    selfharm: Threshold = None
    health: Threshold = None
    financial: Threshold = None
    law: Threshold = None
    pii: Threshold = None


class ModerationV2Thresholds(StrictModel):
    sexual: Threshold = None
    hate_and_discrimination: Threshold = None
    violence_and_threats: Threshold = None
    dangerous: Threshold = None
    criminal: Threshold = None
    selfharm: Threshold = None
    health: Threshold = None
    financial: Threshold = None
    law: Threshold = None
    pii: Threshold = None
    jailbreaking: Threshold = None


class _Moderation(StrictModel):
    ignore_other_categories: bool = False
    action: Literal["none", "block"] = "none"


class ModerationV1Config(_Moderation):
    model_name: str = "mistral-moderation-2411"
    custom_category_thresholds: ModerationV1Thresholds | None = None


class ModerationV2Config(_Moderation):
    model_name: str = "mistral-moderation-2603"
    custom_category_thresholds: ModerationV2Thresholds | None = None


class GuardrailConfig(StrictModel):
    """Mistral's guardrail settings, validated as its description types them. Stored and echoed:
    no moderation model runs here (README "API coverage" says what that means)."""

    block_on_error: bool = False
    moderation_llm_v1: ModerationV1Config | None = None
    moderation_llm_v2: ModerationV2Config | None = None


def _dumped(value: Any) -> Any:
    if isinstance(value, list):
        return [item.model_dump(mode="json") if isinstance(item, BaseModel) else item for item in value]
    return value


# What is stored: the configs as they were accepted. Loaded as plain objects, so that a stored
# agent or conversation from before the configs were typed still reads.
StoredGuardrails = Annotated[list[dict[str, Any]], BeforeValidator(_dumped)]
