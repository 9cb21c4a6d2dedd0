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
import io
import json
import os
import re
import select
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs

from agentsapi.errors import ApiError, InvalidRequest, NotFound, PayloadTooLarge
from agentsapi.http.connections import ConnectionLimiter, ConnectionPolicy, DeadlineReader, refusal
from agentsapi.http.edge import EVENT_STREAM
from agentsapi.http.errors import error_body
from agentsapi.http.handler_call import HandlerCall

HEALTH_PATH = "/healthz"  # the web adapter's readiness check
# A non-streamed POST still running after this gets its status and headers, then a space every
# KEEPALIVE_S, so that neither API Gateway's idle timer nor a client's read timeout ends it.
EARLY_HEADERS_S = 2.0
KEEPALIVE_S = 2.0
IDLE_TIMEOUT_S = 30.0  # also how long a response may wait for a client that stops reading it
Handler = Callable[[dict[str, Any]], dict[str, Any]]
BodyLimit = Callable[[str], int]
# A raw route answers (method, path, query) itself, before any API event: with (status, headers,
# chunks), or, for a request whose body it takes as a stream, with a callable given a BodyStream.
RawRoute = Callable[[str, str, str], "tuple[int, dict[str, str], Any] | Callable[[BodyStream], Any] | None"]
# A stager takes a large request body as a stream (e.g. an upload, to a staging file) instead of
# into the event: (method, path, headers, declared length) -> None (not staged), a refusal, or
# a StagedBody whose receive() reads the body and returns entries for the event's requestContext.
Stager = Callable[[str, str, Any, int], "StagedBody | ApiError | None"]
# A handler answering with this header names a signed raw-route path that the front end streams
# instead of a body (nginx's X-Accel-Redirect); it is never sent to the client.
INTERNAL_REDIRECT_HEADER = "X-Accel-Redirect"
_DIGITS = re.compile(r"[0-9]{1,15}")


class ClientGone(Exception):
    """The client closed the connection before its body arrived whole: nobody to answer."""


class BodyStream:
    """A request body read in chunks as it arrives, within the connection's body deadline
    (a grace period plus a minimum rate: agentsapi/http/connections.py)."""

    def __init__(self, request: BaseHTTPRequestHandler, length: int) -> None:
        self.request = request
        self.length = length
        self.remaining = length
        self.headers = request.headers

    def read(self, size: int = 1 << 20) -> bytes:
        """Up to ``size`` bytes, b"" at the end; RequestTimeout or ClientGone when it stops arriving."""
        if self.remaining <= 0:
            return b""
        try:
            chunk = self.request.rfile.read1(min(size, self.remaining))  # type: ignore[attr-defined]
        except TimeoutError:
            raise body_timeout(self.request.server) from None  # type: ignore[arg-type]
        if not chunk:
            raise ClientGone()
        self.remaining -= len(chunk)
        return chunk

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read():
            yield chunk


class StagedBody(Protocol):
    def receive(self, body: BodyStream) -> dict[str, Any]: ...
    def cleanup(self) -> None: ...


def _body_bytes(response: dict[str, Any]) -> bytes:
    raw = response.get("body") or ""
    return base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()


def _asks_to_stream(event: dict[str, Any]) -> bool:
    """Whether the request's JSON body asks for a stream (such a turn answers at once anyway)."""
    try:
        body = json.loads(event.get("body") or "null")
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("stream") is True


class GatewayTimeout(ApiError):
    status = 504
    error_type = "server_error"


class LengthRequired(InvalidRequest):
    status = 411


class RequestTimeout(InvalidRequest):
    status = 408


def body_timeout(server: FrontendServer) -> RequestTimeout:
    policy = server.policy
    return RequestTimeout(f"the request body did not arrive in time (within {policy.body_grace_s:g} s plus one "
                          f"second per {policy.body_min_rate} bytes received)", param="body")


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

    def setup(self) -> None:
        """Reads go through the connection's deadlines (a phase's deadline, not each read's timeout)."""
        super().setup()
        self.reader = DeadlineReader(self.connection, self.server.policy)  # type: ignore[attr-defined]
        self.rfile = io.BufferedReader(self.reader, 1 << 16)

    def handle_one_request(self) -> None:
        self.reader.expect_request()  # idle until its first byte, then the header deadline
        super().handle_one_request()

    def _log(self, status: int, started: float) -> None:
        sys.stderr.write(f"{self.command} {self.path} {status} {(time.monotonic() - started) * 1000:.0f}ms\n")

    def _handle(self) -> None:
        started = time.monotonic()
        self.reader.expect_body()
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
        length = self._declared_length()
        limit = int(self.server.body_limit(path))  # type: ignore[attr-defined]
        if isinstance(length, int) and length > limit:
            return PayloadTooLarge(f"request body is larger than {limit} bytes", param="body")
        return length

    def _declared_length(self) -> int | ApiError:
        if self.headers.get("transfer-encoding"):
            return LengthRequired("send the body with a Content-Length (Transfer-Encoding is not supported)",
                                  param="Content-Length")
        declared = {value.strip() for value in self.headers.get_all("content-length") or []}
        if len(declared) > 1:
            return InvalidRequest("conflicting Content-Length headers", param="Content-Length")
        raw = declared.pop() if declared else "0"
        if not _DIGITS.fullmatch(raw):
            if raw.isascii() and raw.isdigit():  # more digits than any body could have
                return PayloadTooLarge("request body is larger than any route accepts", param="body")
            return InvalidRequest("Content-Length must be a non-negative integer", param="Content-Length")
        return int(raw)

    def _dispatch(self, started: float) -> None:
        """Health; else a raw route (signed paths, answered without an API event); else a body the
        stager streams to disk; else a body read whole into an API Gateway event."""
        path, _, query = self.path.partition("?")
        if path == HEALTH_PATH:
            self._send(200, {"Content-Type": "text/plain"}, b"ok")
            return
        if self._answered_preflight(started) or self._answered_by_raw_route(path, query, started):
            return
        declared = self._declared_length()
        stager = getattr(self.server, "stager", None)
        staged = stager(self.command, path, self.headers, declared) if stager and isinstance(declared, int) else None
        length = declared if staged is not None else self._body_length(path)
        refusal = next((r for r in (staged, length) if isinstance(r, ApiError)), None)
        if refusal is not None:
            self._refuse(refusal, started)
            return
        assert isinstance(length, int)
        if staged is not None:
            try:
                self._call_staged(path, query, staged, length, started)
            finally:
                staged.cleanup()  # whatever the handler did not adopt is removed
            return
        raw = self._read_body(length, started)
        if raw is not None:
            self._call_routed(path, query, raw, started)

    def _answered_by_raw_route(self, path: str, query: str, started: float) -> bool:
        """A raw route answers without an API event: a signed blob download is streamed from
        disk, a signed upload reads the body as a stream. True when it answered (or refused)."""
        raw_route = getattr(self.server, "raw_route", None)
        answer = raw_route(self.command, path, query) if raw_route is not None else None
        if callable(answer):
            answer = self._raw_body_answer(answer, started)
            if answer is None:
                return True  # refused, or the client left
        if answer is None:
            return False
        self._send_stream(*answer)
        self._log(answer[0], started)
        return True

    def _read_body(self, length: int, started: float) -> bytes | None:
        """The whole body, or None when it did not come (refused for being slow, or the client left)."""
        if not length:
            return b""
        try:
            raw = self.rfile.read(length)
        except TimeoutError:
            self._refuse(body_timeout(self.server), started)  # type: ignore[arg-type]
            return None
        if len(raw) < length:  # the client hung up mid-body: nobody to answer
            self.close_connection = True
            return None
        return raw

    def _call_routed(self, path: str, query: str, raw: bytes, started: float) -> None:
        """The body as API Gateway would put it in the event, to the function that owns the path."""
        handler = self.server.route(path)  # type: ignore[attr-defined]
        if handler is None:
            payload = json.dumps({"object": "error", "message": f"No route for {self.command} {path}",
                                  "type": "invalid_request_error", "param": None, "code": None}).encode()
            self._send(404, {"Content-Type": "application/json"}, payload)
            self._log(404, started)
            return
        content_type = self.headers.get("content-type") or ""
        # Binary bodies (uploads) travel base64-encoded, as API Gateway sends binary media types.
        binary = bool(raw) and not content_type.startswith(("application/json", "text/"))
        body = base64.b64encode(raw).decode("ascii") if binary else (raw.decode("utf-8", "replace") if raw else None)
        headers = {k.lower(): v for k, v in self.headers.items()}
        event = make_event(self.command, path, headers, query, body)
        event["isBase64Encoded"] = binary
        self._call(handler, event, started)

    def _call_staged(self, path: str, query: str, staged: StagedBody, length: int, started: float) -> None:
        """A body the stager takes as a stream; the handler gets an event naming what it staged."""
        try:
            context = staged.receive(BodyStream(self, length))
        except ClientGone:
            self.close_connection = True
            return
        except ApiError as error:
            self._refuse(error, started)  # the rest of the body is never read: the connection closes
            return
        handler = self.server.route(path)  # type: ignore[attr-defined]
        headers = {k.lower(): v for k, v in self.headers.items()}
        event = make_event(self.command, path, headers, query, None)
        event["requestContext"].update(context)
        self._call(handler, event, started)

    def _raw_body_answer(self, consume: Callable[[BodyStream], Any], started: float) -> Any:
        length = self._declared_length()
        if isinstance(length, ApiError):
            self._refuse(length, started)
            return None
        body = BodyStream(self, length)
        try:
            answer = consume(body)
        except ClientGone:
            self.close_connection = True
            return None
        except ApiError as error:
            self._refuse(error, started)
            return None
        if body.remaining:  # refused before the end: unread bytes must not become the next request
            self.close_connection = True
        return answer

    def _call(self, handler: Handler, event: dict[str, Any], started: float) -> None:
        """The handler's answer, as the integration in front of it would pass it on: as it comes
        (a stream), early for a long turn (its status at once, then a space every few seconds,
        then the JSON), or, where API Gateway buffers (emulated from template.yaml), whole or a
        504 past the integration's timeout."""
        raw_route = getattr(self.server, "raw_route", None)
        if raw_route is not None:  # this front end serves signed paths: a handler may redirect to one
            event["requestContext"]["internalRedirect"] = True
        gateway = getattr(self.server, "gateway", None)
        integration = gateway.integration(self.command, event["path"]) if gateway is not None else None
        call = HandlerCall(handler, event).start()
        if integration is not None and not integration.streamed:
            self._call_buffered(call, integration.timeout_s, raw_route, started)
            return
        early = getattr(self.server, "early_headers_s", None)
        if early is not None and self.command == "POST" and not _asks_to_stream(event) and not call.wait(early):
            self._answer_patiently(call, started)
            return
        response = call.response()
        self._answer(response, call.sink, raw_route, started)

    def _answer(self, response: dict[str, Any], sink: list[Any], raw_route: RawRoute | None, started: float) -> None:
        status = int(response["statusCode"])
        out_headers = dict(response.get("headers") or {})
        for name, values in (response.get("multiValueHeaders") or {}).items():
            out_headers[name] = values[-1]
        redirect = next((out_headers.pop(n) for n in list(out_headers) if n.lower() == INTERNAL_REDIRECT_HEADER.lower()),
                        None)
        if sink:
            self._stream(status, out_headers, sink[0])
        elif redirect is not None and raw_route is not None:
            status = self._follow(redirect, status, out_headers, raw_route)
        else:
            self._send(status, out_headers, _body_bytes(response))
        self._log(status, started)

    def _answer_patiently(self, call: HandlerCall, started: float) -> None:
        """A non-streamed turn still running after ``early_headers_s``: its status and headers now,
        a space every ``keepalive_s`` (JSON allows leading whitespace; clients that give up after a
        few silent seconds, the SDK's default 5 s among them, keep waiting), then the response's
        JSON. The status is committed: a turn that then fails answers 200 with the API's error
        object as its body (the SDK raises on it; its message is the error's)."""
        keepalive = float(getattr(self.server, "keepalive_s", KEEPALIVE_S))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        gone = False
        while not call.wait(keepalive):
            gone = gone or not self._chunk(b" ")
        try:
            response = call.response()
            status, data = int(response["statusCode"]), _body_bytes(response)
        except Exception:  # noqa: BLE001 - the status is sent: the error goes in the body
            import traceback

            traceback.print_exc()
            status, data = 500, json.dumps({"object": "error", "message": "internal error", "type": "server_error",
                                            "param": None, "code": None}).encode()
        if not gone and self._chunk(data):
            self._chunk(b"")
        self._log(status, started)

    def _call_buffered(self, call: HandlerCall, timeout_s: float, raw_route: RawRoute | None, started: float) -> None:
        """API Gateway with a buffered integration (emulated): nothing until the function returns,
        a stream collected whole, and a 504 past the integration's timeout (the function, and the
        turn, go on)."""
        deadline = started + timeout_s
        if call.wait(max(0.0, deadline - time.monotonic())):
            response = call.response()
            if call.sink:  # a stream the gateway collects whole before passing it on
                collected: list[bytes] = []
                drain = threading.Thread(target=lambda: collected.extend(call.sink[0]), daemon=True)
                drain.start()
                drain.join(max(0.0, deadline - time.monotonic()))
                if not drain.is_alive():
                    self._send(int(response["statusCode"]), {"Content-Type": EVENT_STREAM}, b"".join(collected))
                    self._log(int(response["statusCode"]), started)
                    return
            else:
                # A download the local front end streams itself (its signed path) stays a local
                # convenience: in AWS a large file is fetched from its signed URL instead.
                self._answer(response, [], raw_route, started)
                return
        error = GatewayTimeout(f"Endpoint request timed out: the integration's {timeout_s:g} s passed (API Gateway "
                               "buffers this route; a streamed route would have answered)")
        self._send(error.status, {"Content-Type": "application/json"}, json.dumps(error_body(error)).encode())
        self._log(error.status, started)

    def _chunk(self, data: bytes) -> bool:
        """One chunk of a chunked body (b"" ends it); False if the client has gone."""
        try:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        except OSError:
            return False
        return True

    def _follow(self, target: str, status: int, headers: dict[str, str], raw_route: RawRoute) -> int:
        """Stream what a signed raw-route path serves, under the handler's status and headers
        (its Content-Type and Content-Disposition; the length is the blob's)."""
        path, _, query = target.partition("?")
        answer = raw_route("GET", path, query)
        if answer is None or callable(answer) or answer[0] != 200:
            if answer is not None and not callable(answer):
                getattr(answer[2], "close", lambda: None)()
            error = NotFound("the file's content is missing from storage", param="file_id")
            self._send(404, {"Content-Type": "application/json"}, json.dumps(error_body(error)).encode())
            return 404
        length = {k.lower(): v for k, v in answer[1].items()}.get("content-length", "0")
        kept = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        self._send_stream(status, {**kept, "Content-Length": length}, answer[2])
        return status

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
        for block in blocks:
            # A client that closed the stream (the playground's Stop, a closed tab) cancels the
            # turn: the next event is not asked for, and the turn, closed before it was stored,
            # keeps nothing. Seen before each write: a write to a closed socket may still succeed.
            client_gone = self._peer_closed()
            if not client_gone:
                try:
                    self.wfile.write(f"{len(block):x}\r\n".encode() + block + b"\r\n")
                    self.wfile.flush()
                except OSError:
                    client_gone = True
            if client_gone:
                close = getattr(blocks, "close", None)
                if close is not None:
                    close()
                break
        if not client_gone:
            with contextlib.suppress(OSError):
                self.wfile.write(b"0\r\n\r\n")
        after = getattr(self.server, "after_stream", None)
        if after is not None:
            after()

    def _peer_closed(self) -> bool:
        """The client has closed its end (EOF waiting on the socket), without blocking."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    do_GET = do_HEAD = do_POST = do_PATCH = do_PUT = do_DELETE = do_OPTIONS = _handle

    def __getattr__(self, name: str) -> Any:
        # Any other method (TRACE, QUERY, a made-up one) goes to the handlers too, which answer 405
        # with Allow or 404 in the API's error format; the standard library would send a 501 page.
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def end_headers(self) -> None:
        """Every response carries Access-Control-Allow-Origin for an allowed origin (see Cors)."""
        cors: Cors | None = getattr(self.server, "cors", None)
        headers = getattr(self, "headers", None)  # unset when the request line itself was bad
        allowed = cors.allowed(headers.get("origin")) if cors is not None and headers is not None else None
        if allowed:
            self.send_header("Access-Control-Allow-Origin", allowed)
            self.send_header("Vary", "Origin")
        super().end_headers()

    def _answered_preflight(self, started: float) -> bool:
        """A browser's CORS preflight, answered before anything else, as a function URL does."""
        cors: Cors | None = getattr(self.server, "cors", None)
        if cors is None or self.command != "OPTIONS" or not self.headers.get("access-control-request-method"):
            return False
        if self._declared_length() != 0:
            # Not read: the connection closes after the answer, so no byte of it is ever taken
            # for the next request (request smuggling behind a proxy that reuses connections).
            self.close_connection = True
        headers = {"Content-Length": "0"}
        if cors.allowed(self.headers.get("origin")):
            headers.update({"Access-Control-Allow-Methods": cors.methods, "Access-Control-Allow-Headers": cors.headers,
                            "Access-Control-Max-Age": str(cors.max_age_s)})
        self._send(204, headers, b"")
        self._log(204, started)
        return True


@dataclass(frozen=True)
class Cors:
    """What the stack's function URL does once its Cors is set (template.yaml), so a page served
    from another origin (the playground, in AWS) can read the streams: preflights are answered
    before the handler, and every response carries Access-Control-Allow-Origin. In AWS the
    function URL does this itself; locally `make serve` does it only when CORS_ALLOW_ORIGINS is set.
    No credentials mode: the API key travels in the Authorization header, never in a cookie."""

    origins: frozenset[str]
    methods: str = "GET, POST, PATCH, PUT, DELETE"
    headers: str = "authorization, content-type, accept"
    max_age_s: int = 600

    @classmethod
    def from_env(cls) -> Cors | None:
        """CORS_ALLOW_ORIGINS: comma-separated origins (scheme://host[:port]), or *."""
        raw = os.environ.get("CORS_ALLOW_ORIGINS", "")
        origins = frozenset(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
        return cls(origins) if origins else None

    def allowed(self, origin: str | None) -> str | None:
        """The Access-Control-Allow-Origin value for a request from ``origin``, or None."""
        if not origin:
            return None
        if "*" in self.origins:
            return "*"
        return origin if origin in self.origins else None


class FrontendServer(ThreadingHTTPServer):
    daemon_threads = True
    # The listen backlog: a burst of clients (16 tenants opening connections at once) must queue,
    # not be refused with a reset (socketserver's default is 5).
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], route: Callable[[str], Handler | None],
                 after_stream: Callable[[], None] | None = None, body_limit: BodyLimit = route_body_limit,
                 raw_route: RawRoute | None = None, stager: Stager | None = None, cors: Cors | None = None,
                 policy: ConnectionPolicy | None = None, gateway: Any = None,
                 early_headers_s: float | None = EARLY_HEADERS_S, keepalive_s: float = KEEPALIVE_S) -> None:
        super().__init__(address, Frontend)
        # API Gateway as template.yaml configures it (agentsapi/http/gateway.py), where this front
        # end stands in for it (make serve); None where the real one is in front (Lambda).
        self.gateway = gateway
        self.early_headers_s, self.keepalive_s = early_headers_s, keepalive_s
        # Deadlines per request phase, and how many connections are served at once (in all and
        # per client address); beyond that a connection is refused at once, never queued.
        self.policy = policy or ConnectionPolicy.from_env()
        self.connections = ConnectionLimiter(self.policy)
        self.route = route
        self.cors = cors  # None: no CORS headers at all (same-origin pages, the SDK)
        # Takes some large bodies as streams rather than into the event (local uploads).
        self.stager = stager
        # Answers some requests (method, path, query) itself, before any body or API event.
        self.raw_route = raw_route
        # Checked against Content-Length before the body is read.
        self.body_limit = body_limit
        # The turn's metrics are added while the stream is written, after the handler's
        # @log_metrics flushed: the streaming function flushes them again here.
        self.after_stream = after_stream

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread per admitted connection; a connection over the caps gets a 503 and is closed,
        from the accepting thread, without reading it."""
        address = str(client_address[0]) if isinstance(client_address, tuple) else "local"
        why = self.connections.admit(address)
        if why is not None:
            with contextlib.suppress(OSError):
                request.send(refusal(why), socket.MSG_DONTWAIT)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.connections.release(address)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.release(str(client_address[0]) if isinstance(client_address, tuple) else "local")


def main() -> None:
    """The web app of the streaming function: the conversations handler, and the MCP server's."""
    import app  # the handler modules beside this file
    import mcp_app

    def route(path: str) -> Handler | None:
        if path == "/v1/conversations" or path.startswith("/v1/conversations/"):
            return lambda event: app.lambda_handler(event, LambdaContextStub())
        if path == "/mcp":
            return lambda event: mcp_app.lambda_handler(event, LambdaContextStub())
        return None

    def flush_metrics() -> None:
        app.metrics.flush_metrics()
        mcp_app.metrics.flush_metrics()

    address = ("0.0.0.0", int(os.environ.get("PORT", "8080")))  # noqa: S104 - the adapter connects locally
    # Every connection comes from the web adapter (one request at a time per environment): no cap
    # per client address, whose only address is the adapter's.
    policy = ConnectionPolicy.from_env()
    server = FrontendServer(address, route, after_stream=flush_metrics,
                            policy=ConnectionPolicy(**{**policy.__dict__, "max_per_client": 0}))
    server.serve_forever()


if __name__ == "__main__":
    main()
