"""SQLite adapter of the quota's UsageLedger: one row per workspace, a column per kind.

A charge is one UPSERT whose update applies only while the new total stays within the quota
(``WHERE files + sessions + :n <= :quota``), so it is atomic without a Python lock, as the
DynamoDB adapter's conditional UpdateItem is.
"""

from __future__ import annotations

from ...quota import KINDS
from .db import Database, Migration

USAGE_MIGRATION = Migration(5, "storage usage per workspace", [
    """CREATE TABLE usage (
        ws TEXT NOT NULL PRIMARY KEY, files INTEGER NOT NULL DEFAULT 0, sessions INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID""",
])

_TOTAL = " + ".join(KINDS)


def _column(kind: str) -> str:
    if kind not in KINDS:  # the only names ever put into a statement
        raise ValueError(f"unknown usage kind {kind!r}")
    return kind


class SqliteUsageLedger:
    def __init__(self, db: Database) -> None:
        self.db = db

    def charge(self, ws: str, kind: str, nbytes: int, quota: int | None) -> bool:
        column = _column(kind)
        if quota is not None and nbytes > quota:
            return False
        limit = "" if quota is None else f" WHERE {_TOTAL} + :n <= :quota"
        rows = self.db.connection().execute(
            f"INSERT INTO usage (ws, {column}) VALUES (:ws, :n) "  # noqa: S608 - column from KINDS
            f"ON CONFLICT (ws) DO UPDATE SET {column} = {column} + :n{limit} RETURNING ws",
            {"ws": ws, "n": nbytes, "quota": quota}).fetchall()
        return bool(rows)

    def credit(self, ws: str, kind: str, nbytes: int) -> None:
        column = _column(kind)
        self.db.connection().execute(
            f"UPDATE usage SET {column} = MAX(0, {column} - ?) WHERE ws = ?", (nbytes, ws))  # noqa: S608

    def usage(self, ws: str) -> dict[str, int]:
        row = self.db.connection().execute(f"SELECT {', '.join(KINDS)} FROM usage WHERE ws = ?", (ws,)).fetchone()  # noqa: S608
        return {kind: int(row[kind]) if row else 0 for kind in KINDS}

    def set_usage(self, ws: str, held: dict[str, int]) -> None:
        values = [max(0, int(held.get(kind, 0))) for kind in KINDS]
        columns = ", ".join(KINDS)
        updates = ", ".join(f"{kind} = excluded.{kind}" for kind in KINDS)
        with self.db.write() as connection:
            connection.execute(f"INSERT INTO usage (ws, {columns}) VALUES (?, {', '.join('?' * len(KINDS))}) "  # noqa: S608
                               f"ON CONFLICT (ws) DO UPDATE SET {updates}", (ws, *values))

    def workspaces(self) -> list[str]:
        return [row[0] for row in self.db.connection().execute("SELECT ws FROM usage ORDER BY ws")]
