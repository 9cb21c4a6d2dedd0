"""The sandbox's protocol pieces that need no process: framing, request parsing, seccomp program, output text."""

from __future__ import annotations

import struct

import pytest

from agentsapi.sandbox.port import ExecutionResult, result_from_response
from sandbox_runner import frames
from sandbox_runner.protocol import BadRequest, SandboxConfig, parse_request


def test_frames_survive_arbitrary_chunking() -> None:
    data = frames.encode(frames.STDOUT, b"hello ") + frames.encode(frames.STDERR, b"oops") + frames.encode(frames.RESULT, b"{}")
    reader = frames.FrameReader(max_frame=1024)
    got = []
    for i in range(len(data)):
        got += reader.feed(data[i : i + 1])
    assert got == [(b"o", b"hello "), (b"e", b"oops"), (b"r", b"{}")]


def test_oversized_or_unknown_frames_stop_parsing() -> None:
    reader = frames.FrameReader(max_frame=10)
    assert reader.feed(frames.encode(frames.STDOUT, b"x" * 11)) == [] and reader.corrupt
    reader = frames.FrameReader(max_frame=10)
    assert reader.feed(b"z" + struct.pack(">I", 1) + b"x") == [] and reader.corrupt


@pytest.mark.parametrize(("request_body", "message"), [
    ([], "JSON object"),
    ({"code": 1}, "code"),
    ({"code": "x", "timeout_s": -1}, "timeout_s"),
    ({"code": "x", "files": [{"name": "../etc/passwd", "content_b64": ""}]}, "plain file name"),
    ({"code": "x", "files": [{"name": "a", "content_b64": "***"}]}, "base64"),
    ({"code": "x", "files": [{"name": "é" * 200, "content_b64": ""}]}, "at most 255 bytes in UTF-8"),
    ({"code": "x", "files": [{"name": "\udcff.csv", "content_b64": ""}]}, "valid UTF-8"),
])
def test_bad_requests_name_the_field(request_body: object, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_request(request_body, SandboxConfig())


def test_timeout_is_capped_by_the_configured_limit() -> None:
    assert parse_request({"code": "x", "timeout_s": 999}, SandboxConfig(timeout_s=30)).timeout_s == 30


def test_code_output_reads_like_a_notebook() -> None:
    result = result_from_response({
        "status": "error", "outputs": [{"stream": "stdout", "text": "partial"}], "display": None,
        "error": {"name": "ZeroDivisionError", "value": "division by zero",
                  "traceback": "Traceback (most recent call last):\n  File \"<cell>\", line 2\nZeroDivisionError: division by zero\n"},
        "notes": ["a limit was hit"],
    })
    assert result.code_output() == ("partial\nTraceback (most recent call last):\n  File \"<cell>\", line 2\n"
                                    "ZeroDivisionError: division by zero\n[a limit was hit]\n")


def test_malformed_sandbox_responses_become_crashed() -> None:
    assert result_from_response({"status": "weird"}).status == "crashed"
    assert result_from_response({"status": "bad_request", "message": "code must be a string"}).status == "error"
    assert ExecutionResult.unavailable("no bwrap").code_output() == "[code execution is unavailable: no bwrap]\n"


@pytest.mark.parametrize("function_mb,configured,expected", [
    (None, None, 1024), (None, "600", 600),          # locally: SANDBOX_MEMORY_MB, else 1024
    ("512", None, 256), ("4096", None, 2048),        # in Lambda: half the function's memory...
    ("4096", "1024", 1024), ("1024", "4096", 512),   # ...or SANDBOX_MEMORY_MB when lower
])
def test_memory_cap_leaves_the_runner_room_in_lambda(monkeypatch: pytest.MonkeyPatch, function_mb: str | None,
                                                     configured: str | None, expected: int) -> None:
    for name, value in (("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", function_mb), ("SANDBOX_MEMORY_MB", configured)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert SandboxConfig.from_env().memory_mb == expected


def test_a_response_never_names_blob_keys_the_api_side_would_adopt() -> None:
    """Keys and the exchange prefix are the adapter's to set: a forged response naming another
    execution's outputs in transit (which adopt_blob's sandbox/ guard would let through) is cleared."""
    result = result_from_response({"status": "ok", "exchange_prefix": "files/",
                                   "files": [{"name": "x.csv", "key": "sandbox/other-execution/out/0"}],
                                   "session": {"key": "sandbox/other-execution/out/session", "bytes": 1}})
    assert result.files[0].key is None and result.session is not None and result.session.key is None
    assert result.exchange_prefix is None


TABLE = {"columns": ["a"], "index": ["0", "1"], "rows": [["1"], ["2"]], "shape": [2, 1], "index_name": ""}


@pytest.mark.parametrize("forged", [
    {**TABLE, "rows": [["1", "2"], ["3", "4"]]},  # more cells than columns
    {**TABLE, "rows": [["1"]]},  # fewer rows than index labels
    {**TABLE, "index": [str(n) for n in range(51)], "rows": [["x"]] * 51, "shape": [51, 1]},  # over the row cap
    {**TABLE, "columns": ["x" * 41]},  # a cell longer than its cap
    {**TABLE, "rows": [[1], [2]]},  # not text
    {**TABLE, "shape": [True, 1]},
    {**TABLE, "shape": [-1, 1]},
    "a table",
])
def test_a_table_the_child_did_not_make_as_specified_is_dropped(forged: object) -> None:
    """The child's result frame can be written by the user's code: the runner keeps a table only
    in exactly its shape and bounds (else the text display alone), and so does the API side."""
    from sandbox_runner.runner import clean_table

    assert clean_table(TABLE) == TABLE
    assert clean_table(forged) is None
    kept = ExecutionResult.model_validate({"status": "ok", "display": "x", "table": forged})
    assert kept.status == "ok" and kept.display == "x"
    if isinstance(forged, dict) and len(forged.get("index", [])) > 50:
        assert kept.table is None


def test_live_lines_go_whole_redacted_and_a_burst_as_one_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox_runner import runner

    clock = [100.0]
    monkeypatch.setattr(runner.time, "monotonic", lambda: clock[0])
    emitted: list[tuple[str, str]] = []
    live = runner.LiveLines(lambda stream, text: emitted.append((stream, text)),
                            lambda text: (text or "").replace("s3cret", "[redacted]"))
    live("stdout", b"first line\nsec")
    assert emitted == [("stdout", "first line\n")]  # at once, after a quiet spell; the half line waits
    for n in range(1000):  # a burst within the interval: held
        live("stdout", b"ret s3cret\n" if n == 0 else f"line {n}\n".encode())
    assert len(emitted) == 1
    clock[0] += runner.LiveLines.INTERVAL_S * 1.01
    live.flush_due()
    assert len(emitted) == 2 and emitted[1][1].startswith("secret [redacted]\nline 1\n")
    assert emitted[1][1].count("\n") == 1000
