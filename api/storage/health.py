"""Whether the database can be used: the last fault a request met, and a live readiness probe."""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from api.storage.session import get_engine

#: A storage fault keeps the database reported as unavailable for this long (seconds) unless a
#: probe finds it usable again.
FAULT_MEMORY_S = 30.0
#: Below this much free disk beside a SQLite database (or 2 % of a small disk) it is reported
#: full (bytes).
MIN_FREE_BYTES = 8 * 1024 * 1024


@dataclass
class StorageState:
    """The last storage fault seen by any request of this process."""

    error: str | None = None
    at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def failed(self, exc: BaseException) -> None:
        """Remember a fault (its first line, without SQL or parameters)."""
        orig = getattr(exc, "orig", None) or exc
        first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        with self._lock:
            self.error, self.at = first[:200], time.monotonic()

    def recovered(self) -> None:
        """Forget the last fault (a probe found the database usable)."""
        with self._lock:
            self.error = None

    def recent_error(self) -> str | None:
        """Return the last fault if it is recent, else ``None``."""
        with self._lock:
            if self.error is not None and time.monotonic() - self.at < FAULT_MEMORY_S:
                return self.error
            return None


storage_state = StorageState()


def probe(url: str) -> str | None:
    """Check the database now: it answers a query, and (SQLite) its disk has room.

    Returns
    -------
    str or None
        ``None`` when usable, else why not (one line).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).parent
        try:
            usage = shutil.disk_usage(folder)
        except OSError as e:
            return f"database folder unreadable: {e.strerror}"
        free = usage.free
        if free < min(MIN_FREE_BYTES, usage.total // 50):
            return f"disk nearly full ({free // 1024} kB free beside the database)"
    try:
        # SQLite begins writing transactions IMMEDIATE: this also finds a held or unwritable lock.
        with get_engine(url).begin() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as e:
        storage_state.failed(e)
        return storage_state.error or type(e).__name__
    storage_state.recovered()
    return None
