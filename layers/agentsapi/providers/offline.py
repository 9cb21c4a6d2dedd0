"""The offline model: deterministic, no network, no keys. Used whenever no provider is configured.

Contract (tests rely on it): for each fenced ``python`` code block in the latest user message, in
order, it calls ``code_interpreter`` once with that block's code; then it answers with one
message whose text contains each execution's output. With no code block it says that no model
provider is configured and how to configure one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from .port import ModelEvent, ModelRequest, TextDelta, ToolCallDelta, UsageReport, estimate_tokens

CODE_BLOCK = re.compile(r"```(?:python|py)[^\n]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
NO_PROVIDER = (
    "This server is running its offline model: no model provider is configured. "
    "Put Python code in a ```python fenced block and I will run it with code_interpreter. "
    "To use a real model, restart the service with MISTRAL_API_KEY set (Mistral's API: "
    "`MISTRAL_API_KEY=... make serve`) or LLM_BASE_URL (an OpenAI-compatible server: "
    "`LLM_BASE_URL=http://127.0.0.1:11434/v1 make serve`)."
)


def _chunks(text: str, size: int = 24) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


class OfflineModel:
    def stream(self, request: ModelRequest) -> Iterator[ModelEvent]:
        last_user = max((i for i, m in enumerate(request.messages) if m.role == "user"), default=-1)
        user_text = request.messages[last_user].content if last_user >= 0 else ""
        blocks = [block.strip("\n") for block in CODE_BLOCK.findall(user_text)]
        results = [m for m in request.messages[last_user + 1 :] if m.role == "tool"]
        has_interpreter = any(t.name == "code_interpreter" for t in request.tools)
        prompt_tokens = sum(estimate_tokens(m.content) for m in request.messages)

        if blocks and has_interpreter and len(results) < len(blocks):
            code = blocks[len(results)]
            arguments = json.dumps({"code": code})
            yield ToolCallDelta(index=0, id=f"call{len(results):05d}", name="code_interpreter")
            for piece in _chunks(arguments):
                yield ToolCallDelta(index=0, arguments=piece)
            yield UsageReport(prompt_tokens, estimate_tokens(arguments))
            return

        if not blocks:
            answer = NO_PROVIDER
        elif not has_interpreter:
            answer = "I found Python code, but the code_interpreter tool is not enabled for this conversation."
        else:
            sections = [f"Output of block {n}:\n```\n{r.content.rstrip()}\n```" for n, r in enumerate(results, 1)]
            answer = f"I ran {len(results)} code block(s).\n\n" + "\n\n".join(sections)
        for piece in _chunks(answer, 48):
            yield TextDelta(piece)
        yield UsageReport(prompt_tokens, estimate_tokens(answer))
