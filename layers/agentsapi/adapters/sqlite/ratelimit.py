"""SQLite adapter of the rate limiter's WindowCounter.

One UPSERT counts the request: a new window row starts at 1, an existing one goes up only while
below the limit (``DO UPDATE ... WHERE n < limit``), so a spent allowance changes nothing and
returns no row. It is a single statement, hence atomic, with no Python lock around it. Expired
windows are deleted through their expiry index when a workspace opens a new window: at most
once per workspace per minute, never on the hot path of a window already open.
"""

from __future__ import annotations

from .db import Database


class SqliteWindowCounter:
    def __init__(self, db: Database) -> None:
        self.db = db

    def count(self, workspace: str, window_start: int, limit: int, expires_at: int) -> bool:
        connection = self.db.connection()
        row = connection.execute(
            "INSERT INTO rate_windows (ws, window_start, n, expires_at) VALUES (?, ?, 1, ?) "
            "ON CONFLICT (ws, window_start) DO UPDATE SET n = n + 1 WHERE n < ? RETURNING n",
            (workspace, window_start, expires_at, limit)).fetchall()  # fetchall: the statement is done and reset
        if not row:
            return False
        if row[0][0] == 1:  # this request opened the window: time to drop windows that have expired
            connection.execute("DELETE FROM rate_windows WHERE expires_at <= ?", (window_start,))
        return True
