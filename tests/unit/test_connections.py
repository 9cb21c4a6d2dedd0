"""The front end's connection policy: deadlines per request phase (not per read), and caps."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator

import pytest

from agentsapi.http.connections import ConnectionLimiter, ConnectionPolicy, DeadlineReader, PhaseTimeout, refusal


def test_the_defaults_are_the_documented_ones_and_each_setting_reads_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    policy = ConnectionPolicy()
    assert (policy.idle_timeout_s, policy.header_timeout_s, policy.body_grace_s, policy.body_min_rate,
            policy.write_timeout_s, policy.max_connections, policy.max_per_client) == (30.0, 10.0, 30.0, 1024, 30.0, 1024, 128)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_connections = 1  # type: ignore[misc]
    assert ConnectionPolicy.from_env() == policy or any(
        k in __import__("os").environ for k in ("IDLE_TIMEOUT_S", "HEADER_TIMEOUT_S", "MAX_CONNECTIONS"))
    for name, value in (("IDLE_TIMEOUT_S", "7"), ("HEADER_TIMEOUT_S", "3"), ("BODY_GRACE_S", "4"),
                        ("BODY_MIN_RATE_BYTES_S", "99"), ("MAX_CONNECTIONS", "5"), ("MAX_CONNECTIONS_PER_CLIENT", "0")):
        monkeypatch.setenv(name, value)
    assert ConnectionPolicy.from_env() == ConnectionPolicy(idle_timeout_s=7, header_timeout_s=3, body_grace_s=4,
                                                           body_min_rate=99, max_connections=5, max_per_client=0)
    monkeypatch.setenv("MAX_CONNECTIONS", " ")  # blank: the default
    assert ConnectionPolicy.from_env().max_connections == 1024


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
    assert late.value.phase == "headers" and str(late.value) == "the request's headers did not arrive in time"
    assert server.gettimeout() == ConnectionPolicy().write_timeout_s  # the response still gets its timeout


def test_waiting_for_a_request_uses_the_idle_timeout(pair: tuple) -> None:
    server, client = pair
    reader = DeadlineReader(server, ConnectionPolicy(idle_timeout_s=0.2, header_timeout_s=10))
    assert (reader.phase, reader.deadline, reader.received) == ("request", None, 0)
    reader.expect_request()
    with pytest.raises(PhaseTimeout) as idle:
        reader.readinto(memoryview(bytearray(4)))
    assert idle.value.phase == "request"
    client.sendall(b"GE")  # a request begins: from now on the header deadline, not the idle timeout
    assert reader.readinto(memoryview(bytearray(1))) == 1 and reader.deadline is not None


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


def test_the_body_deadline_counts_every_byte_received_and_ends_exactly_on_time(pair: tuple) -> None:
    server, client = pair
    clock = Clock()
    reader = DeadlineReader(server, ConnectionPolicy(body_grace_s=2, body_min_rate=100), clock)
    reader.expect_request()
    reader.expect_body()
    assert (reader.phase, reader.received, reader.deadline) == ("body", 0, 1002.0)
    for _ in range(3):  # 3 x 50 bytes: 1.5 more seconds, counted in all
        client.sendall(b"x" * 50)
        assert reader.readinto(memoryview(bytearray(50))) == 50
    assert reader.received == 150 and reader.deadline == 1003.5
    reader.expect_body()  # the next request's body starts from nothing
    assert reader.received == 0 and reader.deadline == 1002.0
    clock.now = 1002.0  # exactly at the deadline: too late
    client.sendall(b"y")
    with pytest.raises(PhaseTimeout):
        reader.readinto(memoryview(bytearray(1)))


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
    assert limiter.admit("10.0.0.5") == "the server has 5 open connections, its capacity; retry shortly"
    for _ in range(2):
        limiter.release("10.0.0.2")
    assert limiter.open_connections() == 3
    assert limiter.admit("10.0.0.2") is None and limiter.admit("10.0.0.2") is None  # back to its full two
    limiter.release("10.0.0.3")
    limiter.release("10.0.0.4")
    assert limiter.admit("10.0.0.1") is None  # its one released place
    assert limiter.admit("10.0.0.1") == ("2 connections are open from your address, the most one client may hold; "
                                         "reuse them or close some")
    assert ConnectionLimiter(ConnectionPolicy(max_per_client=0)).admit("x") is None  # 0: no cap per address


def test_a_refusal_is_a_whole_503_in_the_api_error_shape() -> None:
    head, _, body = refusal("full").partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in head and b"Connection: close" in head
    assert f"Content-Length: {len(body)}".encode() in head
    import json

    assert json.loads(body) == {"object": "error", "message": "full", "type": "service_unavailable", "param": None,
                                "code": None}


def test_a_head_that_stalls_mid_way_times_out_as_headers(pair: tuple) -> None:
    server, client = pair
    reader = DeadlineReader(server, ConnectionPolicy(idle_timeout_s=5, header_timeout_s=0.2))
    reader.expect_request()
    client.sendall(b"GET / HTTP/1.1\r\n")
    assert reader.readinto(memoryview(bytearray(64))) > 0
    with pytest.raises(PhaseTimeout) as stalled:  # the socket's own timeout fires, at the header deadline
        reader.readinto(memoryview(bytearray(64)))
    assert stalled.value.phase == "headers"


def test_a_minimum_rate_of_one_byte_a_second_gives_a_second_per_byte(pair: tuple) -> None:
    server, client = pair
    clock = Clock()
    reader = DeadlineReader(server, ConnectionPolicy(body_grace_s=1, body_min_rate=1), clock)
    reader.expect_body()
    client.sendall(b"x" * 10)
    assert reader.readinto(memoryview(bytearray(10))) == 10 and reader.deadline == 1011.0


def test_released_addresses_leave_nothing_behind() -> None:
    """A server that has seen a million client addresses holds no count for any of them."""
    limiter = ConnectionLimiter(ConnectionPolicy())
    for n in range(100):
        assert limiter.admit(f"10.1.0.{n}") is None
        limiter.release(f"10.1.0.{n}")
    assert limiter.open_connections() == 0 and not limiter._per_client
