"""Per-workspace rate limits: a fixed one-minute window, counted by a WindowCounter.

The counter is shared state (DynamoDB across every concurrent Lambda, SQLite across the local
server's threads), because an in-memory count would be exact for one process only. Counting is
one atomic "add one while below the limit" so that concurrent requests can never overshoot.
API Gateway's stage throttling stays in front as the coarse, account-wide guard.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from .errors import RateLimited

WINDOW_S = 60
KEEP_WINDOWS = 5  # a window's counter may be dropped this many windows after it started


class WindowCounter(Protocol):
    def count(self, workspace: str, window_start: int, limit: int, expires_at: int) -> bool:
        """Atomically count one more request in the workspace's window if fewer than ``limit`` were
        counted; False (and nothing counted) if the allowance is spent. ``expires_at`` (epoch s) is
        when the window's counter may be removed."""
        ...


class RateLimiter:
    def __init__(self, counter: WindowCounter, default_per_minute: int, clock: Callable[[], float] = time.time) -> None:
        self.counter = counter
        self.default_per_minute = default_per_minute
        self.clock = clock

    def check(self, workspace: str, per_minute: int | None = None) -> None:
        """Count one request; raise RateLimited when the workspace's allowance is spent. 0 = no limit."""
        limit = per_minute if per_minute is not None else self.default_per_minute
        if limit <= 0:
            return
        now = self.clock()
        window = int(now) - int(now) % WINDOW_S
        if not self.counter.count(workspace, window, limit, window + KEEP_WINDOWS * WINDOW_S):
            retry_after = max(1, window + WINDOW_S - int(now))
            raise RateLimited(f"Rate limit exceeded: {limit} requests per minute for this workspace; "
                              f"retry in {retry_after} s", retry_after_s=retry_after)
