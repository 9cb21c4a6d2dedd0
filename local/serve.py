"""`make serve`: the whole service on one machine, no AWS account, no network.

A threaded HTTP front end turns each request into an API Gateway proxy event and calls the real
Lambda handler for its path. DynamoDB is moto, in-process; the sandbox is the local bubblewrap
worker pool; the model is the offline model unless a provider is configured. Streamed
conversation turns really stream (the handler hands its events to this server).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers"))

from local.apigw import function_for, invoke, make_event  # noqa: E402


def _defaults() -> None:
    """Embedded defaults for local use; anything already set in the environment wins."""
    os.environ.setdefault("SANDBOX_MODE", "local")
    os.environ.setdefault("SANDBOX_RUNNER_DIR", str(ROOT / "sandbox_image"))
    os.environ.setdefault("TABLE_NAME", "agents-api-local")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "agents-api")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "AgentsApi")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")


class Frontend(BaseHTTPRequestHandler):
    server_version = "agents-api-local"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # one line per request is written by _log instead

    def _log(self, status: int, started: float) -> None:
        sys.stderr.write(f"{self.command} {self.path} {status} {(time.monotonic() - started) * 1000:.0f}ms\n")

    def _handle(self) -> None:
        started = time.monotonic()
        try:
            self._dispatch(started)
        except Exception:  # noqa: BLE001 - a bug must cost one request, not the connection
            import traceback

            traceback.print_exc()
            payload = json.dumps({"object": "error", "message": "internal error", "type": "server_error",
                                  "param": None, "code": None}).encode()
            with contextlib.suppress(OSError):
                self._send(500, {"Content-Type": "application/json"}, payload)
            self._log(500, started)

    def _dispatch(self, started: float) -> None:
        from agentsapi.http.edge import stream_sink

        path, _, query = self.path.partition("?")
        function = function_for(path)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else None
        if function is None:
            payload = json.dumps({"object": "error", "message": f"No route for {self.command} {path}",
                                  "type": "invalid_request_error", "param": None, "code": None}).encode()
            self._send(404, {"Content-Type": "application/json"}, payload)
            self._log(404, started)
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        event = make_event(self.command, path, headers, query, body)
        sink: list[Any] = []
        token = stream_sink.set(sink)
        try:
            response = invoke(function, event)
        finally:
            stream_sink.reset(token)
        status = int(response["statusCode"])
        out_headers = dict(response.get("headers") or {})
        for name, values in (response.get("multiValueHeaders") or {}).items():
            out_headers[name] = values[-1]
        if sink:
            self._stream(status, out_headers, sink[0])
        else:
            raw = response.get("body") or ""
            data = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()
            self._send(status, out_headers, data)
        self._log(status, started)

    def _send(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        if status != 204:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if status != 204:
            self.wfile.write(data)

    def _stream(self, status: int, headers: dict[str, str], blocks: Any) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        client_gone = False
        for block in blocks:  # always run the turn to the end, so what was done is stored
            if client_gone:
                continue
            try:
                self.wfile.write(f"{len(block):x}\r\n".encode() + block + b"\r\n")
                self.wfile.flush()
            except OSError:
                client_gone = True
        if not client_gone:
            with contextlib.suppress(OSError):
                self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle


def start(host: str, port: int, warm: bool = True) -> tuple[ThreadingHTTPServer, Any]:
    """Start moto, the services and the front end; returns the server (running in a thread)."""
    _defaults()
    from local.aws import create_table, fake_credentials

    fake_credentials()
    from moto import mock_aws

    mock = mock_aws()
    mock.start()
    from agentsapi.services import build_services, use_services
    from agentsapi.settings import Settings

    settings = Settings()
    create_table(settings.table_name)
    services = build_services(settings)
    use_services(services)
    if warm and hasattr(services.sandbox, "warm_up"):
        try:
            hello = services.sandbox.warm_up()
            sys.stderr.write(f"sandbox ready: {json.dumps(hello.get('isolation'))} in {hello.get('startup_ms')} ms\n")
        except Exception as exc:  # noqa: BLE001 - serve the API anyway; executions will say why
            sys.stderr.write(f"WARNING: code execution unavailable: {exc}\n")
    server = ThreadingHTTPServer((host, port), Frontend)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, services


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    args = parser.parse_args()
    server, services = start(args.host, args.port)
    url = f"http://{args.host}:{server.server_address[1]}"
    from agentsapi.settings import resolved_provider

    provider = resolved_provider(services.settings)
    if provider == "mistral":
        provider += f" at {services.settings.mistral_server_url or 'https://api.mistral.ai'}"
    elif provider == "openai":
        provider += f"-compatible at {services.settings.llm_base_url}"
    keys = "any bearer token is accepted; each distinct token is its own workspace" if services.keys.open \
        else f"{len(services.keys.hashes)} API key(s) accepted (API_KEYS)"
    print(f"""
Agents & Conversations API listening on {url}
  storage: DynamoDB (moto, in memory)   model: {provider}   sandbox: {services.settings.sandbox_mode}
  auth: {keys}

  from mistralai.client import Mistral
  client = Mistral(api_key="my-key", server_url="{url}")
  agent = client.beta.agents.create(model="mistral-medium-latest", name="calc", tools=[{{"type": "code_interpreter"}}])
  client.beta.conversations.start(agent_id=agent.id, inputs="```python\\nprint(6 * 7)\\n```")
""", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        close = getattr(services.sandbox, "close", None)
        if close:
            close()


if __name__ == "__main__":
    main()
