"""Reading a server-sent event stream as a client does (benchmarks and tests that time events)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from typing import Any


def timed_events(lines: Iterable[str]) -> Iterator[tuple[float, dict[str, Any]]]:
    """(arrival time, the event's JSON data) for each SSE block, as its end arrives."""
    data = ""
    for line in lines:
        if line.startswith("data: "):
            data = line[6:]
        elif not line and data:
            yield time.time(), json.loads(data)
            data = ""
