"""An HTTP front end for the real handlers, so conversation streams really stream.

Python Lambda handlers behind the powertools resolver can only return a buffered body. This
module serves HTTP, turns each request into an API Gateway proxy event, calls the handler, and
when a conversation turn streams, writes its SSE blocks to the client as they are produced
(the handler hands its event iterator over through ``stream_sink``).

It runs in two places:
* in AWS, as the web app of the ``ConversationsStreamFunction`` (Lambda Web Adapter in
  ``response_stream`` mode behind a function URL; ``run.sh`` starts it on port 8080);
* locally, under ``make serve`` (``local/serve.py``), for every route.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from agentsapi.errors import ApiError, InvalidRequest, PayloadTooLarge
from agentsapi.http.edge import stream_sink
from agentsapi.http.errors import error_body

HEALTH_PATH = "/healthz"  # the web adapter's readiness check
IDLE_TIMEOUT_S = 30.0
BODY_READ_TIMEOUT_S = 30.0  # per read: a client that stops sending its body frees the thread
Handler = Callable[[dict[str, Any]], dict[str, Any]]
BodyLimit = Callable[[str], int]
RawRoute = Callable[[str, str, str], "tuple[int, dict[str, str], Any] | None"]
_DIGITS = re.compile(r"[0-9]{1,15}")


class LengthRequired(InvalidRequest):
    status = 411


class RequestTimeout(InvalidRequest):
    status = 408


def route_body_limit(path: str) -> int:
    """The largest body the route accepts, as its handler counts it (the same settings)."""
    from agentsapi.http.edge import request_body_limit
    from agentsapi.services import get_services

    return request_body_limit(get_services().settings, path)


def _header_safe(value: str) -> bool:
    """A header value http.server can write as is: Latin-1, with nothing that ends the line."""
    return not any(c in value for c in "\r\n\0") and all(ord(c) < 256 for c in value)


def make_event(method: str, path: str, headers: dict[str, str] | None = None, query: str = "",
               body: str | None = None) -> dict[str, Any]:
    headers = dict(headers or {})
    parsed = parse_qs(query, keep_blank_values=True)
    single = {k: v[-1] for k, v in parsed.items()} or None
    multi = parsed or None
    request_id = str(uuid.uuid4())
    return {
        "resource": path,
        "path": path,
        "httpMethod": method.upper(),
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": single,
        "multiValueQueryStringParameters": multi,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path, "httpMethod": method.upper(), "path": path, "stage": os.environ.get("STAGE_NAME", "local"),
            "requestId": request_id, "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": "127.0.0.1", "userAgent": headers.get("user-agent", "")},
            "accountId": "000000000000", "apiId": "local",
        },
        "body": body,
        "isBase64Encoded": False,
    }


@dataclass
class LambdaContextStub:
    """What the handlers read of a Lambda context (the web adapter does not pass the real one through)."""

    function_name: str = "local"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:local"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timeout_s: float = 300.0
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return int((self.timeout_s - (time.monotonic() - self.started)) * 1000)


class Frontend(BaseHTTPRequestHandler):
    """HTTP in, API Gateway proxy event to the real handler, HTTP (or a live SSE stream) out."""

    server_version = "agents-api"
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: with Nagle's algorithm on, the body waits for
    # the client's delayed ACK (40 ms on Linux) on every keep-alive response.
    disable_nagle_algorithm = True
    # A connection that sends nothing (a half-sent request line, an idle keep-alive) is closed
    # after this, instead of holding a thread and a descriptor for as long as its client likes.
    timeout = IDLE_TIMEOUT_S

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

    def _refuse(self, error: ApiError, started: float) -> None:
        """Answer in the API's error shape without reading the body, and close the connection, so
        bytes left unread are never taken for the next request."""
        self.close_connection = True
        self._send(error.status, {"Content-Type": "application/json", **error.headers}, json.dumps(error_body(error)).encode())
        self._log(error.status, started)

    def _body_length(self, path: str) -> int | ApiError:
        """The declared length, validated before a byte of the body is read."""
        if self.headers.get("transfer-encoding"):
            return LengthRequired("send the body with a Content-Length (Transfer-Encoding is not supported)",
                                  param="Content-Length")
        declared = {value.strip() for value in self.headers.get_all("content-length") or []}
        if len(declared) > 1:
            return InvalidRequest("conflicting Content-Length headers", param="Content-Length")
        raw = declared.pop() if declared else "0"
        limit = int(self.server.body_limit(path))  # type: ignore[attr-defined]
        if not _DIGITS.fullmatch(raw):
            if raw.isascii() and raw.isdigit():  # more digits than any body could have
                return PayloadTooLarge(f"request body is larger than {limit} bytes", param="body")
            return InvalidRequest("Content-Length must be a non-negative integer", param="Content-Length")
        length = int(raw)
        if length > limit:
            return PayloadTooLarge(f"request body is larger than {limit} bytes", param="body")
        return length

    def _dispatch(self, started: float) -> None:
        path, _, query = self.path.partition("?")
        if path == HEALTH_PATH:
            self._send(200, {"Content-Type": "text/plain"}, b"ok")
            return
        raw_route = getattr(self.server, "raw_route", None)
        answer = raw_route(self.command, path, query) if raw_route is not None else None
        if answer is not None:  # e.g. a signed blob download locally: streamed, no API event
            self._send_stream(*answer)
            self._log(answer[0], started)
            return
        length = self._body_length(path)
        if isinstance(length, ApiError):
            self._refuse(length, started)
            return
        raw = b""
        if length:
            self.connection.settimeout(BODY_READ_TIMEOUT_S)
            try:
                raw = self.rfile.read(length)
            except TimeoutError:
                self._refuse(RequestTimeout(f"the request body did not arrive within {BODY_READ_TIMEOUT_S:.0f} s",
                                            param="body"), started)
                return
            finally:
                self.connection.settimeout(self.timeout)
            if len(raw) < length:  # the client hung up mid-body: nobody to answer
                self.close_connection = True
                return
        handler = self.server.route(path)  # type: ignore[attr-defined]
        content_type = self.headers.get("content-type") or ""
        # Binary bodies (uploads) travel base64-encoded, as API Gateway sends binary media types.
        binary = bool(raw) and not content_type.startswith(("application/json", "text/"))
        body = base64.b64encode(raw).decode("ascii") if binary else (raw.decode("utf-8", "replace") if raw else None)
        if handler is None:
            payload = json.dumps({"object": "error", "message": f"No route for {self.command} {path}",
                                  "type": "invalid_request_error", "param": None, "code": None}).encode()
            self._send(404, {"Content-Type": "application/json"}, payload)
            self._log(404, started)
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        event = make_event(self.command, path, headers, query, body)
        event["isBase64Encoded"] = binary
        sink: list[Any] = []
        token = stream_sink.set(sink)
        try:
            response = handler(event)
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
            if name.lower() not in ("content-length", "transfer-encoding", "connection") and _header_safe(value):
                self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        if status != 204:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if status != 204:
            self.wfile.write(data)

    def _send_stream(self, status: int, headers: dict[str, str], body: Any) -> None:
        """A response whose headers carry its Content-Length, written chunk by chunk (nothing for HEAD)."""
        try:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in ("transfer-encoding", "connection") and _header_safe(value):
                    self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                for chunk in body:
                    self.wfile.write(chunk)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    def _stream(self, status: int, headers: dict[str, str], blocks: Any) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection") and _header_safe(value):
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
        after = getattr(self.server, "after_stream", None)
        if after is not None:
            after()

    do_GET = do_HEAD = do_POST = do_PATCH = do_PUT = do_DELETE = _handle


class FrontendServer(ThreadingHTTPServer):
    daemon_threads = True
    # The listen backlog: a burst of clients (16 tenants opening connections at once) must queue,
    # not be refused with a reset (socketserver's default is 5).
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], route: Callable[[str], Handler | None],
                 after_stream: Callable[[], None] | None = None, body_limit: BodyLimit = route_body_limit,
                 raw_route: RawRoute | None = None) -> None:
        super().__init__(address, Frontend)
        self.route = route
        # Answers some requests (method, path, query) itself, before any body or API event.
        self.raw_route = raw_route
        # Checked against Content-Length before the body is read.
        self.body_limit = body_limit
        # The turn's metrics are added while the stream is written, after the handler's
        # @log_metrics flushed: the streaming function flushes them again here.
        self.after_stream = after_stream


def main() -> None:
    """The web app of the streaming function: every request goes to the conversations handler."""
    import app  # the conversations handler module beside this file

    def route(path: str) -> Handler | None:
        if path == "/v1/conversations" or path.startswith("/v1/conversations/"):
            return lambda event: app.lambda_handler(event, LambdaContextStub())
        return None

    address = ("0.0.0.0", int(os.environ.get("PORT", "8080")))  # noqa: S104 - the adapter connects locally
    server = FrontendServer(address, route, after_stream=app.metrics.flush_metrics)
    server.serve_forever()


if __name__ == "__main__":
    main()
