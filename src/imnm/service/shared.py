"""State the worker processes of `imnm serve --workers N` share: a small key-value table in a
SQLite file (the token replay cache, the cards' reports).

One connection per process, used under a lock. The rows live minutes to an hour, so there is no
fsync (``synchronous = OFF``): what a crash of the machine loses is a link to reopen or a replay
window that has closed anyway. Every :data:`PURGE_EVERY` writes, expired rows are deleted
through an index on their expiry (without it each purge read the whole table: 10 ms at 30,000
reports, on the event loop) and, for a table with a ``capacity``, the oldest rows beyond it.

Writers take turns on an advisory lock of their own (``flock`` on ``PATH.lock``) before they
write. SQLite alone answers a writer that finds the file locked by sleeping and trying again
(1, 2, 5, 10 ms and longer, on the event loop of a serving worker); the lock wakes a waiting
writer as soon as the other has written. The kernel releases it when its holder exits, so a
worker that dies holding it blocks nobody. Where ``fcntl`` is missing, SQLite's own waiting
is all there is.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Unix
    fcntl = None  # type: ignore[assignment]

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
        self._turn: int | None = None
        if fcntl is not None:
            self._turn = os.open(f"{path}.lock", os.O_WRONLY | os.O_CREAT, 0o600)
            weakref.finalize(self, os.close, self._turn)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """This process's turn to write: its thread lock, then the writers' file lock."""
        with self._lock:
            if self._turn is None:
                yield
                return
            fcntl.flock(self._turn, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._turn, fcntl.LOCK_UN)

    def insert(self, key: str, until: float, value: str = "") -> bool:
        """Add the row; False when ``key`` is there already (another writer got there first)."""
        with self._writing():
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
