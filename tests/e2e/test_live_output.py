"""A cell's output while it runs: each printed line reaches a streaming client as it is printed
(``tool.execution.delta`` events with ``output``, beside an empty ``arguments``), the official SDK
still parses the stream, and a client that closes the stream stops the cell and keeps nothing."""

from __future__ import annotations

import time
from typing import Any

import httpx

from local.sse import timed_events

FENCE = "```"
LINES = 5
# Each line says when it was printed (this machine's clock, which the test shares).
INTERVAL_S = 0.5
TICKING = f"import time\nfor n in range({LINES}):\n    print(n, time.time(), flush=True)\n    time.sleep({INTERVAL_S})"


def _turn(code: str) -> dict[str, Any]:
    return {"model": "m", "tools": [{"type": "code_interpreter"}], "stream": True,
            "inputs": f"{FENCE}python\n{code}\n{FENCE}"}


def _events(response: httpx.Response) -> Any:
    return timed_events(response.iter_lines())


def test_each_printed_line_arrives_before_the_next_is_printed(server_url: str) -> None:
    """Live, not at the cell's end: each line is at the client before the cell prints the next,
    half a second later (benchmarks/live_output.py measures how soon: 1-3 ms, unloaded)."""
    headers = {"Authorization": "Bearer live-key", "Accept": "text/event-stream"}
    lags, texts = [], []
    with httpx.stream("POST", f"{server_url}/v1/conversations", json=_turn(TICKING), headers=headers,
                      timeout=60) as response:
        assert response.status_code == 200
        for arrived, event in _events(response):
            output = event.get("output")
            if event["type"] == "tool.execution.delta" and output:
                assert event["arguments"] == "" and output["stream"] == "stdout"
                number, printed = output["text"].split()
                texts.append(int(number))
                lags.append(arrived - float(printed))
    assert texts == list(range(LINES))
    assert max(lags) < INTERVAL_S, [round(lag * 1000) for lag in lags]


def test_the_official_sdk_still_parses_a_stream_with_live_output(server_url: str) -> None:
    from mistralai.client import Mistral

    client = Mistral(api_key="live-key", server_url=server_url)
    stream = client.beta.conversations.start_stream(
        model="m", tools=[{"type": "code_interpreter"}],
        inputs=f"{FENCE}python\nfor n in range(3):\n    print('line', n)\n{FENCE}")
    kinds = [event.event for event in stream]
    assert kinds.count("tool.execution.delta") >= 3 and kinds[-1] == "conversation.response.done", kinds


def test_closing_the_stream_stops_the_cell_and_keeps_nothing(server_url: str) -> None:
    headers = {"Authorization": "Bearer live-close-key", "Accept": "text/event-stream"}
    code = "import time\nfor n in range(40):\n    print(n, flush=True)\n    time.sleep(0.25)\nopen('done', 'w')"
    with httpx.stream("POST", f"{server_url}/v1/conversations", json=_turn(code), headers=headers,
                      timeout=60) as response:
        for _, event in _events(response):
            if event.get("output"):
                break  # the cell is running: leave
    closed = time.monotonic()
    listed: list[Any] = []
    while time.monotonic() - closed < 3:
        time.sleep(0.5)
        listed = httpx.get(f"{server_url}/v1/conversations", headers={"Authorization": "Bearer live-close-key"},
                           timeout=30).json()
    assert listed == []  # cancelled: not stored, although the cell would have gone on for 10 s
    # The stopped cell's worker was replaced: the next turn runs as usual.
    after = httpx.post(f"{server_url}/v1/conversations", json={**_turn("print('next')"), "stream": False},
                       headers={"Authorization": "Bearer live-close-key"}, timeout=60)
    assert after.status_code == 200 and after.json()["outputs"][0]["info"]["code_output"] == "next\n"
