"""State the worker processes of `imnm serve --workers N` share: a small key-value table in a
SQLite file (the token replay cache, the cards' reports).

One connection per process, used under a lock. The rows live minutes to an hour, so there is no
fsync (``synchronous = OFF``): what a crash of the machine loses is a link to reopen or a replay
window that has closed anyway. Every :data:`PURGE_EVERY` writes, expired rows are deleted
through an index on their expiry (without it each purge read the whole table: 10 ms at 30,000
reports, on the event loop) and, for a table with a ``capacity``, the oldest rows beyond it.
"""

from __future__ import annotations

import sqlite3
import threading
import time

PURGE_EVERY = 100


class SharedTable:
    """``key -> (until, value)`` rows in the table ``name`` of the SQLite file ``path``; with
    ``capacity``, at most that many rows (and :data:`PURGE_EVERY` more between purges) are
    kept, the newest. A replay cache has none: forgetting a token early would let it replay."""

    def __init__(self, path: str, name: str, capacity: int | None = None) -> None:
        if not name.isidentifier():
            raise ValueError(f"table name: got {name!r}; expected an identifier")
        self.path, self.name, self.capacity = path, name, capacity
        self._lock = threading.Lock()
        self._writes = 0
        self._db = sqlite3.connect(path, timeout=10, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute(f"CREATE TABLE IF NOT EXISTS {name} "
                         "(key TEXT PRIMARY KEY, until REAL, value TEXT)")
        self._db.execute(f"CREATE INDEX IF NOT EXISTS {name}_until ON {name} (until)")

    def insert(self, key: str, until: float, value: str = "") -> bool:
        """Add the row; False when ``key`` is there already (another writer got there first)."""
        with self._lock:
            self._writes += 1
            if self._writes % PURGE_EVERY == 1:
                self._db.execute(f"DELETE FROM {self.name} WHERE until < ?",  # noqa: S608
                                 (time.time(),))
                if self.capacity is not None:  # rowids grow with each insert, from any process
                    self._db.execute(
                        f"DELETE FROM {self.name} WHERE rowid <= "  # noqa: S608
                        f"(SELECT MAX(rowid) FROM {self.name}) - ?", (self.capacity,))
            try:
                self._db.execute(f"INSERT INTO {self.name} VALUES (?, ?, ?)",  # noqa: S608
                                 (key, until, value))
            except sqlite3.IntegrityError:
                return False
            return True

    def get(self, key: str) -> str | None:
        """The value of ``key``, or None when it is absent or has expired."""
        with self._lock:
            row = self._db.execute(f"SELECT until, value FROM {self.name} "  # noqa: S608
                                   "WHERE key = ?", (key,)).fetchone()
        if row is None or row[0] < time.time():
            return None
        return str(row[1])
