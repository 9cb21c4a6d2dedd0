"""Domain errors to HTTP, in one place, in the shapes Mistral's API (and its SDK) use."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..errors import ApiError, FunctionResultsMissing, ValidationFailed


def validation_detail(errors: list[Any], prefix: tuple[str, ...] = ("body",)) -> list[dict[str, Any]]:
    """FastAPI-style details; ``loc`` names the field, ``msg`` says what is wrong with it."""
    detail = []
    for error in errors:
        loc = [*prefix, *[str(p) for p in error.get("loc", ())]]
        item = {"type": error.get("type", "value_error"), "loc": loc, "msg": error.get("msg", "invalid value")}
        if "input" in error and isinstance(error["input"], (str, int, float, bool, type(None))):
            item["input"] = error["input"]
        detail.append(item)
    return detail


def from_pydantic(exc: ValidationError, prefix: tuple[str, ...] = ("body",)) -> ValidationFailed:
    return ValidationFailed(validation_detail(exc.errors(include_url=False), prefix))


def error_body(exc: ApiError) -> dict[str, Any]:
    if isinstance(exc, ValidationFailed):
        # The wrapped FastAPI shape seen on api.mistral.ai; the SDK reads ``detail`` from either.
        return {"object": "error", "message": {"detail": exc.detail}, "type": exc.error_type,
                "param": None, "code": None, "detail": exc.detail}
    if isinstance(exc, FunctionResultsMissing):
        return {"object": "Error", "message": exc.message, "type": exc.error_type, "code": exc.code}
    return {"object": "error", "message": exc.message, "type": exc.error_type, "param": exc.param, "code": None,
            **exc.details}
