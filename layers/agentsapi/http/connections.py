"""What the local HTTP front end allows one connection: deadlines per request phase, and caps.

A threaded server gives every connection a thread and a descriptor, so a client that sends
slowly, or opens many connections, can hold what every other client needs. A per-read timeout
is not enough: one header byte every 20 s resets it for ever. So, as nginx and Apache's
mod_reqtimeout do:

- waiting for a request (a fresh or keep-alive connection): ``idle_timeout_s`` for its first byte;
- the request line and headers: ``header_timeout_s`` in all, from that first byte;
- the body: ``body_grace_s``, plus one second per ``body_min_rate`` bytes received (a slow but
  steady upload goes on; a trickle does not);
- at most ``max_connections`` open connections, and ``max_per_client`` from one client address;
  beyond them a connection is answered 503 at once and closed, never queued.

Behind a reverse proxy every client has the proxy's address: set MAX_CONNECTIONS_PER_CLIENT=0
there and let the proxy bound clients (README, "On a network").
"""

from __future__ import annotations

import io
import os
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class ConnectionPolicy:
    idle_timeout_s: float = 30.0
    header_timeout_s: float = 10.0
    body_grace_s: float = 30.0
    body_min_rate: int = 1024  # bytes per second
    write_timeout_s: float = 30.0  # a response the client stops reading
    max_connections: int = 1024
    max_per_client: int = 128  # 0: no cap per address

    @classmethod
    def from_env(cls) -> ConnectionPolicy:
        def number(name: str, default: float) -> float:
            raw = os.environ.get(name, "")
            return float(raw) if raw.strip() else default

        return cls(idle_timeout_s=number("IDLE_TIMEOUT_S", cls.idle_timeout_s),
                   header_timeout_s=number("HEADER_TIMEOUT_S", cls.header_timeout_s),
                   body_grace_s=number("BODY_GRACE_S", cls.body_grace_s),
                   body_min_rate=int(number("BODY_MIN_RATE_BYTES_S", cls.body_min_rate)),
                   max_connections=int(number("MAX_CONNECTIONS", cls.max_connections)),
                   max_per_client=int(number("MAX_CONNECTIONS_PER_CLIENT", cls.max_per_client)))


class PhaseTimeout(TimeoutError):
    """A request phase passed its deadline; ``phase`` says which."""

    def __init__(self, phase: str) -> None:
        super().__init__(f"the request's {phase} did not arrive in time")
        self.phase = phase


class DeadlineReader(io.RawIOBase):
    """The connection's socket as the request handler reads it, with a deadline per phase.
    Wrapped in a BufferedReader as the handler's ``rfile``; every read sets the socket's timeout to
    what is left of the phase, then puts back the write timeout for the response."""

    def __init__(self, sock: socket.socket, policy: ConnectionPolicy, clock: object = time.monotonic) -> None:
        self.sock = sock
        self.policy = policy
        self.clock = clock
        self.phase = "request"
        self.deadline: float | None = None  # None: waiting for a request's first byte
        self.received = 0
        self.started = 0.0

    def readable(self) -> bool:
        return True

    def expect_request(self) -> None:
        """Waiting for the next request: the idle timeout for its first byte, then the header deadline."""
        self.phase, self.deadline = "request", None

    def expect_body(self) -> None:
        """The headers are in: the body's deadline grows with what arrives."""
        self.phase, self.received = "body", 0
        self.started = self.clock()  # type: ignore[operator]
        self.deadline = self.started + self.policy.body_grace_s

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        now = self.clock()  # type: ignore[operator]
        timeout = self.policy.idle_timeout_s if self.deadline is None else self.deadline - now
        if timeout <= 0:
            raise PhaseTimeout("headers" if self.phase == "request" else self.phase)
        self.sock.settimeout(timeout)
        try:
            count = self.sock.recv_into(buffer)
        except TimeoutError:
            raise PhaseTimeout("headers" if self.deadline is not None and self.phase == "request" else self.phase) \
                from None
        finally:
            self.sock.settimeout(self.policy.write_timeout_s)
        if count and self.phase == "request" and self.deadline is None:
            self.deadline = now + self.policy.header_timeout_s  # the request has begun
        elif count and self.phase == "body":
            self.received += count
            self.deadline = self.started + self.policy.body_grace_s + self.received / max(1, self.policy.body_min_rate)
        return count


class ConnectionLimiter:
    """Counts open connections, in all and per client address."""

    def __init__(self, policy: ConnectionPolicy) -> None:
        self.policy = policy
        self._lock = threading.Lock()
        self._open = 0
        self._per_client: Counter[str] = Counter()

    def admit(self, address: str) -> str | None:
        """Count one more connection from ``address``; None, or why it is refused (nothing counted)."""
        with self._lock:
            if self._open >= self.policy.max_connections:
                return f"the server has {self._open} open connections, its capacity; retry shortly"
            if self.policy.max_per_client and self._per_client[address] >= self.policy.max_per_client:
                return (f"{self._per_client[address]} connections are open from your address, the most one client "
                        "may hold; reuse them or close some")
            self._open += 1
            self._per_client[address] += 1
            return None

    def release(self, address: str) -> None:
        with self._lock:
            self._open -= 1
            self._per_client[address] -= 1
            if self._per_client[address] <= 0:
                del self._per_client[address]

    def open_connections(self) -> int:
        with self._lock:
            return self._open


def refusal(reason: str, retry_after_s: int = 1) -> bytes:
    """A whole 503 response in the API's error shape, for a connection refused before any thread."""
    import json

    body = json.dumps({"object": "error", "message": reason, "type": "service_unavailable", "param": None,
                       "code": None}).encode()
    head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Retry-After: {retry_after_s}\r\nConnection: close\r\n\r\n")
    return head.encode() + body
