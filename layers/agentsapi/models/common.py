"""Shared model bases, ids and timestamps."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationInfo
from pydantic_core import PydanticCustomError

from ..limits import file_name_problem

# The validation context of anything a client sent (bodies, batch requests). Stored objects are
# read back without it, so rules below that apply to client input never break reading old data.
CLIENT_INPUT: dict[str, Any] = {"client_input": True}


def from_client(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("client_input"))


def _server_only(value: Any, info: ValidationInfo) -> Any:
    if from_client(info):
        # Exactly what an unknown field gets: to a client, the field does not exist.
        raise PydanticCustomError("extra_forbidden", "Extra inputs are not permitted (set by the server only)")
    return value


def _client_file_name(value: str | None, info: ValidationInfo) -> str | None:
    if value is not None and from_client(info):
        problem = file_name_problem(value)
        if problem:
            raise PydanticCustomError("file_name", "a file name that {problem}", {"problem": problem})
    return value


# A field the server sets and later trusts (e.g. where stored state lives): refused in client input.
ServerOnly = BeforeValidator(_server_only)
# A file name from a client: at most 255 bytes of UTF-8, no control characters, no '/'.
ClientFileName = Annotated[str, AfterValidator(_client_file_name)]


class StrictModel(BaseModel):
    """Request bodies: unknown fields are refused (the OpenAPI sets additionalProperties: false)."""

    model_config = ConfigDict(extra="forbid")


class ApiModel(BaseModel):
    """Response and stored objects: tolerant when reading back, explicit when writing."""

    model_config = ConfigDict(extra="ignore")


def new_id(prefix: str) -> str:
    """``<prefix>`` + 32 hex chars, time-ordered like the UUIDv7 ids Mistral returns."""
    millis = time.time_ns() // 1_000_000
    return f"{prefix}{millis:012x}{os.urandom(10).hex()}"


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
