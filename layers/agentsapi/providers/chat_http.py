"""Chat-completions providers over HTTP: Mistral's API and OpenAI-compatible servers.

Both speak the same streaming chat-completions dialect (``choices[0].delta`` with ``content``
and ``tool_calls``, ``data:`` SSE lines, ``[DONE]``); the two classes differ only in a few
request fields. ``code_interpreter`` is offered to the model as a function tool whose single
argument is the code; our runtime executes it in the sandbox.

Transport: httpx with connect/read timeouts, retries with exponential backoff and full jitter on
429 and 5xx (honouring ``Retry-After``) before any byte of a response was used, and errors
mapped to the API's own error classes.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from ..errors import ApiError
from .port import ModelEvent, ModelMessage, ModelRequest, TextDelta, ToolCallDelta, UsageReport

RETRY_STATUSES = {429, 500, 502, 503, 504}


class ProviderError(ApiError):
    """The model provider failed; ``status`` is what our API answers."""

    error_type = "server_error"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
        if status == 429:
            self.error_type = "rate_limit_error"
        elif status < 500:
            self.error_type = "invalid_request_error"


def _message(message: ModelMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                             for c in message.tool_calls]
    if message.role == "tool":
        out["tool_call_id"] = message.tool_call_id
        if message.name:
            out["name"] = message.name
    return out


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class ChatCompletionsProvider:
    """A streaming chat-completions client; subclasses adapt the request dialect."""

    name = "chat-completions"

    def __init__(self, base_url: str, api_key: str | None, *, timeout_s: float = 60.0, connect_timeout_s: float = 10.0,
                 max_retries: int = 3, backoff_s: float = 0.5, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.client = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, transport=transport,
                                   timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s))
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.sleep = sleep

    # -- dialect --------------------------------------------------------------------------------
    path = "/v1/chat/completions"

    def body(self, request: ModelRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"model": request.model, "stream": True,
                                "messages": [_message(m) for m in request.messages]}
        if request.tools:
            body["tools"] = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                               "parameters": t.parameters}} for t in request.tools]
        args = dict(request.completion_args)
        for key in ("temperature", "top_p", "max_tokens", "stop", "presence_penalty", "frequency_penalty",
                    "response_format", "prediction"):
            if args.get(key) is not None:
                body[key] = args[key]
        if request.tools and args.get("tool_choice"):
            body["tool_choice"] = args["tool_choice"]
        if args.get("random_seed") is not None:
            body["random_seed"] = args["random_seed"]
        return body

    # -- transport ------------------------------------------------------------------------------
    def _open(self, body: dict[str, Any]) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self.client.send(self.client.build_request("POST", self.path, json=body), stream=True)
            except httpx.TimeoutException as exc:
                if attempt >= self.max_retries:
                    raise ProviderError(f"the model provider did not answer in time ({type(exc).__name__})", 504) from exc
                wait = None
            except httpx.TransportError as exc:
                if attempt >= self.max_retries:
                    raise ProviderError(f"the model provider is unreachable ({type(exc).__name__})", 502) from exc
                wait = None
            else:
                if response.status_code < 400:
                    return response
                text = response.read().decode("utf-8", "replace")[:500]
                response.close()
                if response.status_code not in RETRY_STATUSES or attempt >= self.max_retries:
                    status = response.status_code if response.status_code in (400, 401, 403, 404, 422, 429) else 502
                    if status in (401, 403):
                        status = 502  # our key for the provider is wrong: a server problem, not the caller's
                    raise ProviderError(f"the model provider answered {response.status_code}: {text}", status)
                wait = _retry_after(response)
            # Exponential backoff with full jitter, unless the provider said how long to wait.
            delay = wait if wait is not None else random.uniform(0, self.backoff_s * (2 ** attempt))
            self.sleep(min(delay, 30.0))
            attempt += 1

    def stream(self, request: ModelRequest) -> Iterator[ModelEvent]:
        response = self._open(self.body(request))
        usage: dict[str, Any] | None = None
        try:
            for data in _sse_data(response):
                if data == "[DONE]":
                    break
                try:
                    chunk = json.loads(data)
                except ValueError as exc:
                    raise ProviderError("the model provider sent a malformed stream chunk", 502) from exc
                if chunk.get("object") == "error" or "error" in chunk and not chunk.get("choices"):
                    raise ProviderError(f"the model provider failed mid-stream: {str(chunk)[:300]}", 502)
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    content = delta.get("content")
                    if isinstance(content, str) and content:
                        yield TextDelta(content)
                    elif isinstance(content, list):  # Mistral may send chunk lists
                        text = "".join(c.get("text", "") for c in content if isinstance(c, dict))
                        if text:
                            yield TextDelta(text)
                    for position, call in enumerate(delta.get("tool_calls") or []):
                        function = call.get("function") or {}
                        arguments = function.get("arguments") or ""
                        if not isinstance(arguments, str):
                            arguments = json.dumps(arguments)
                        yield ToolCallDelta(index=call.get("index", position), id=call.get("id"),
                                            name=function.get("name"), arguments=arguments)
        except httpx.TimeoutException as exc:
            raise ProviderError("the model provider stopped sending mid-answer", 504) from exc
        except httpx.TransportError as exc:
            raise ProviderError(f"the model provider connection failed mid-answer ({type(exc).__name__})", 502) from exc
        finally:
            response.close()
        if usage:
            yield UsageReport(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))


def _sse_data(response: httpx.Response) -> Iterator[str]:
    """The ``data:`` payloads of an SSE stream (multi-line data joined, comments skipped)."""
    lines: list[str] = []
    for line in response.iter_lines():
        if line.startswith(":"):
            continue
        if not line:
            if lines:
                yield "\n".join(lines)
                lines = []
            continue
        if line.startswith("data:"):
            lines.append(line[5:].lstrip())
    if lines:
        yield "\n".join(lines)


class MistralProvider(ChatCompletionsProvider):
    name = "mistral"


class OpenAICompatibleProvider(ChatCompletionsProvider):
    """vLLM, Ollama, llama.cpp, OpenAI: the agent's ``model`` name goes through unchanged."""

    name = "openai"
    path = "/chat/completions"  # the base URL conventionally ends in /v1

    def body(self, request: ModelRequest) -> dict[str, Any]:
        body = super().body(request)
        if "random_seed" in body:
            body["seed"] = body.pop("random_seed")
        if body.get("tool_choice") == "any":
            body["tool_choice"] = "required"
        body.pop("prediction", None)
        body["stream_options"] = {"include_usage": True}
        return body
