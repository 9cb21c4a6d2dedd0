"""The front end's connection policy: deadlines per request phase (not per read), and caps."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator

import pytest

from agentsapi.http.connections import ConnectionLimiter, ConnectionPolicy, DeadlineReader, PhaseTimeout, refusal


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    yield server, client
    server.close()
    client.close()


def test_the_header_deadline_counts_from_the_first_byte_and_bytes_do_not_reset_it(pair: tuple) -> None:
    server, client = pair
    clock = Clock()
    reader = DeadlineReader(server, ConnectionPolicy(idle_timeout_s=30, header_timeout_s=10), clock)
    buffer = bytearray(16)
    reader.expect_request()
    client.sendall(b"G")
    assert reader.readinto(memoryview(buffer)) == 1  # the request began: 10 s from now
    for _ in range(9):  # a byte a second: each read succeeds...
        clock.now += 1
        client.sendall(b"E")
        assert reader.readinto(memoryview(buffer)) == 1
    clock.now += 1.5  # ...but the whole head is bounded, however it trickles
    client.sendall(b"T")
    with pytest.raises(PhaseTimeout) as late:
        reader.readinto(memoryview(buffer))
    assert late.value.phase == "headers"
    assert server.gettimeout() == ConnectionPolicy().write_timeout_s  # the response still gets its timeout


def test_waiting_for_a_request_uses_the_idle_timeout(pair: tuple) -> None:
    server, _ = pair
    reader = DeadlineReader(server, ConnectionPolicy(idle_timeout_s=0.2, header_timeout_s=10))
    reader.expect_request()
    with pytest.raises(TimeoutError):
        reader.readinto(memoryview(bytearray(4)))


def test_a_body_may_take_its_grace_plus_a_second_per_minimum_rate(pair: tuple) -> None:
    server, client = pair
    clock = Clock()
    reader = DeadlineReader(server, ConnectionPolicy(body_grace_s=5, body_min_rate=100), clock)
    reader.expect_body()
    buffer = bytearray(1000)
    clock.now += 4.9
    client.sendall(b"x" * 1000)  # 1,000 bytes earn 10 more seconds
    assert reader.readinto(memoryview(buffer)) == 1000
    clock.now += 10
    client.sendall(b"y")
    assert reader.readinto(memoryview(buffer)) == 1
    clock.now += 0.2
    client.sendall(b"z")
    with pytest.raises(PhaseTimeout) as late:
        reader.readinto(memoryview(buffer))
    assert late.value.phase == "body"


def test_a_buffered_reader_over_it_reads_lines_as_the_handler_does(pair: tuple) -> None:
    server, client = pair
    reader = DeadlineReader(server, ConnectionPolicy())
    reader.expect_request()
    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    buffered = io.BufferedReader(reader, 64)
    assert buffered.readline() == b"GET / HTTP/1.1\r\n"
    assert buffered.readline() == b"Host: x\r\n"


def test_connections_are_capped_in_all_and_per_client_address() -> None:
    limiter = ConnectionLimiter(ConnectionPolicy(max_connections=5, max_per_client=2))
    assert limiter.admit("10.0.0.1") is None and limiter.admit("10.0.0.1") is None
    refused = limiter.admit("10.0.0.1")
    assert refused is not None and "from your address" in refused
    assert limiter.admit("10.0.0.2") is None and limiter.admit("10.0.0.2") is None
    assert limiter.admit("10.0.0.3") is None
    full = limiter.admit("10.0.0.4")
    assert full is not None and "capacity" in full
    limiter.release("10.0.0.1")
    assert limiter.admit("10.0.0.4") is None and limiter.open_connections() == 5
    assert ConnectionLimiter(ConnectionPolicy(max_per_client=0)).admit("x") is None  # 0: no cap per address


def test_a_refusal_is_a_whole_503_in_the_api_error_shape() -> None:
    head, _, body = refusal("full").partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in head and b"Connection: close" in head
    assert f"Content-Length: {len(body)}".encode() in head
    assert b'"type": "service_unavailable"' in body and b'"message": "full"' in body
