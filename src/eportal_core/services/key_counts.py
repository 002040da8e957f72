"""Servers per key, all and checked in lately: the start page's numbers.

Counting them reads one entry per server (the ``(key_id, checkin)`` index), ~100-150 ms at a
million servers on either database, and it grows with the fleet. So the start page counts live
while the fleet is smaller than ``eportal.start_page.live_count_under`` servers (exact: a server
registered a moment ago is in), and past that it shows the counts of a background refresh that
runs every ``eportal.start_page.refresh_seconds`` in each process (the page says when they were
counted). A page view then does not wait for a count of every server. The refresh stops after
IDLE_SECONDS without a view; counts older than three refresh periods are not shown: the next view
counts live and starts the refresh again.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import func, select

from ..models import Server, utcnow

log = logging.getLogger(__name__)

#: "checked in recently" on the start page (the ePortal docs: the past 48 hours)
CHECKIN_WINDOW = timedelta(hours=48)
#: the background refresh stops after this long without a start page view
IDLE_SECONDS = 600


def in_hours(window: timedelta) -> str:
    """A window as page text counts it: ``48`` (hours)."""
    return f"{window / timedelta(hours=1):g}"


@dataclass(frozen=True)
class KeyCounts:
    #: key id (None: servers whose key is gone) -> (servers, servers checked in since ``since``)
    by_key: dict[int | None, tuple[int, int]]
    since: datetime
    counted_at: datetime
    #: counted for this page view (False: a background refresh's counts)
    live: bool = True

    @property
    def total(self) -> int:
        return sum(n for n, _ in self.by_key.values())


def count_by_key(conn, now: datetime | None = None, window: timedelta = CHECKIN_WINDOW) -> KeyCounts:
    """One grouped query over the ``(key_id, checkin)`` index; ``conn``: a Session or a Connection."""
    now = now or utcnow()
    since = now - window
    grouped = conn.execute(
        select(Server.key_id, func.count(), func.count().filter(Server.checkin >= since)).group_by(Server.key_id)
    ).all()
    return KeyCounts({key_id: (n, recent) for key_id, n, recent in grouped}, since, now)


class KeyCountsCache:
    """The start page's counts for one process (see the module docstring).

    ``read()`` returns a context manager giving a Connection (``registry["db_read"]``), used by the
    refresh thread; a page view counts through its own session.
    """

    def __init__(self, read, *, live_count_under: int, refresh_seconds: float, window: timedelta = CHECKIN_WINDOW,
                 idle_seconds: float = IDLE_SECONDS):
        self.read = read
        self.idle_seconds = idle_seconds
        self._last_view = time.monotonic()
        self.live_count_under = live_count_under
        self.refresh_seconds = refresh_seconds
        self.window = window
        self.latest: KeyCounts | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._start_lock = threading.Lock()

    def get(self, db, now: datetime | None = None) -> KeyCounts:
        self._last_view = time.monotonic()
        latest = self.latest
        too_old = latest is not None and utcnow() - latest.counted_at > timedelta(seconds=3 * self.refresh_seconds)
        if latest is None or too_old or latest.total < self.live_count_under:
            counts = count_by_key(db, now, self.window)
            self.latest = counts
            if counts.total >= self.live_count_under:
                self.start()
            return counts
        self.start()
        return replace(latest, live=False)

    def refresh(self) -> KeyCounts:
        with self.read() as conn:
            counts = count_by_key(conn, None, self.window)
        self.latest = counts
        return counts

    def start(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="key-counts", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=10)
        self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            if time.monotonic() - self._last_view > self.idle_seconds:
                return  # nobody looks: stop counting (the next view counts live and restarts it)
            try:
                self.refresh()
            except Exception as exc:  # a database hiccup: keep the last counts, try again next time
                first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                log.warning("refreshing the start page's counts failed: %s", first_line[:300])
