"""A local HTTP server that answers like Mistral's (or an OpenAI-compatible) chat-completions API.

Each request is answered by the next scripted reply, or by ``brain(body)`` when the script is
empty. Replies replay the providers' real shapes: ``chat.completion.chunk`` SSE lines, tool calls
(whole or split over chunks), ``usage`` in the last chunk, ``data: [DONE]``; or an error status
with headers; or a hang.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    chunks: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    hang_s: float = 0.0
    chunk_delay_s: float = 0.0
    raw_after: dict[int, str] = field(default_factory=dict)  # extra raw ``data:`` lines after chunk N


def chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None,
          model: str = "mistral-small-latest") -> dict[str, Any]:
    data: dict[str, Any] = {"id": "cmpl-1", "object": "chat.completion.chunk", "created": 1764000000, "model": model,
                            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage:
        data["usage"] = {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]}
    return data


def text_reply(text: str, prompt: int = 20, completion: int = 5, pieces: int = 3) -> Reply:
    size = max(1, len(text) // pieces)
    parts = [text[i : i + size] for i in range(0, len(text), size)]
    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": part}) for part in parts]
    chunks.append(chunk({"content": ""}, finish="stop", usage={"prompt_tokens": prompt, "completion_tokens": completion}))
    return Reply(chunks=chunks)


def tool_call_reply(name: str, arguments: str, call_id: str = "D681PevKs", split: bool = False,
                    prompt: int = 30, completion: int = 12) -> Reply:
    """Mistral sends a tool call whole; OpenAI-style servers split the arguments (``split=True``)."""
    chunks = [chunk({"role": "assistant", "content": ""})]
    if split:
        third = max(1, len(arguments) // 3)
        pieces = [arguments[:third], arguments[third : 2 * third], arguments[2 * third :]]
        chunks.append(chunk({"tool_calls": [{"index": 0, "id": call_id, "type": "function",
                                             "function": {"name": name, "arguments": pieces[0]}}]}))
        chunks += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in pieces[1:]]
        chunks.append(chunk({}, finish="tool_calls", usage={"prompt_tokens": prompt, "completion_tokens": completion}))
    else:
        chunks.append(chunk({"tool_calls": [{"id": call_id, "function": {"name": name, "arguments": arguments},
                                             "index": 0}]}, finish="tool_calls",
                            usage={"prompt_tokens": prompt, "completion_tokens": completion}))
    return Reply(chunks=chunks)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """Tests hang up on purpose (timeouts, stalls): a client that left is not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class FakeChatServer:
    def __init__(self, brain: Callable[[dict[str, Any]], Reply] | None = None) -> None:
        self.script: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.brain = brain or (lambda body: text_reply("ok"))
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                server.requests.append(body)
                server.headers.append({k.lower(): v for k, v in self.headers.items()})
                reply = server.script.pop(0) if server.script else server.brain(body)
                if reply.hang_s:
                    time.sleep(reply.hang_s)
                    return
                if reply.status != 200:
                    payload = reply.body.encode() or json.dumps({"object": "error", "message": "boom"}).encode()
                    self.send_response(reply.status)
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for number, item in enumerate(reply.chunks):
                    self.wfile.write(f"data: {json.dumps(item)}\n\n".encode())
                    if number in reply.raw_after:
                        self.wfile.write(f": keep-alive\ndata: {reply.raw_after[number]}\n\n".encode())
                    self.wfile.flush()
                    if reply.chunk_delay_s:
                        time.sleep(reply.chunk_delay_s)
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def two_executions_then_answer(body: dict[str, Any]) -> Reply:
    """The e2e brain: run code twice, then answer with what the two runs printed."""
    messages = body["messages"]
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    results = [m["content"] for m in messages[last_user + 1 :] if m["role"] == "tool"]
    if len(results) == 0:
        return tool_call_reply("code_interpreter", json.dumps({"code": "x = 21\nprint(x)"}), call_id="call00001")
    if len(results) == 1:
        return tool_call_reply("code_interpreter", json.dumps({"code": "print(21 * 2)"}), call_id="call00002", split=True)
    return text_reply(f"First {results[0].strip()}, then {results[1].strip()}.")
