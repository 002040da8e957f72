"""The start page's servers per key: counted for each view on small fleets, from a background
refresh at fleet scale (services/key_counts.py), on SQLite and PostgreSQL."""
from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

import pytest

from eportal_core.services import keys as keys_service
from eportal_core.services.key_counts import KeyCountsCache

from .fleet import add_server


def total(page) -> str:
    return page.html.select_one("#total-servers").get_text(strip=True)


@pytest.fixture
def counts(app):
    """The app's cache, emptied, its thread stopped afterwards and its settings put back."""
    cache = app.registry["key_counts"]
    saved = (cache.live_count_under, cache.refresh_seconds)
    cache.stop()
    cache.latest = None
    yield cache
    cache.stop()
    cache.latest = None
    cache.live_count_under, cache.refresh_seconds = saved


def test_a_small_fleet_is_counted_for_each_view(testapp, as_admin, dbsession, counts):
    keys_service.create_key(dbsession, "small")
    add_server(dbsession, "small")
    assert total(testapp.get("/admin/")) == "1"
    add_server(dbsession, "small")
    page = testapp.get("/admin/")
    assert total(page) == "2"
    assert page.html.select_one(".counts-note") is None
    assert counts.live_count_under == 100_000  # the default of eportal.start_page.live_count_under


def test_at_fleet_scale_the_page_shows_the_last_refresh_and_says_when(testapp, as_admin, dbsession, counts):
    counts.live_count_under = 2          # "fleet scale" from 2 servers on
    counts.refresh_seconds = 3600        # no background refresh during the test: refresh() by hand
    keys_service.create_key(dbsession, "big")
    add_server(dbsession, "big", checkin_ago=timedelta(hours=1))
    add_server(dbsession, "big", checkin_ago=timedelta(hours=50))
    first = testapp.get("/admin/")       # nothing counted yet: counted for this view
    assert total(first) == "2" and first.html.select_one(".counts-note") is None
    add_server(dbsession, "big")
    cached = testapp.get("/admin/")
    assert total(cached) == "2"          # the last count, not this view's
    note = cached.html.select_one(".counts-note")
    assert note is not None and "refreshed every 3600 s" in note.get_text(" ", strip=True)
    stamp = counts.latest.counted_at
    assert note.select_one("time")["datetime"] == stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert note.select_one("time").get_text(strip=True) == stamp.strftime("%H:%M:%S UTC")
    counts.refresh()
    fresh = testapp.get("/admin/")
    assert total(fresh) == "3"
    # the summary tiles and the key row come from the same counts
    assert [t.get_text(strip=True) for t in fresh.html.select(".stat-value")][:3] == ["3", "2", "1"]
    assert counts._thread is not None    # the background refresh runs from the first cached view on


def test_the_background_refresh_follows_the_fleet(committed_db):
    """The refresh thread, through its own connections, picks up servers registered since."""
    engine = committed_db.engine
    with committed_db.session() as db:
        key_id = keys_service.create_key(db, "grow").id
        add_server(db, "grow")
    cache = KeyCountsCache(engine.connect, live_count_under=1, refresh_seconds=0.05)
    try:
        with engine.connect() as conn:
            assert cache.get(conn).by_key == {key_id: (1, 1)}   # counted for this view, thread started
        with committed_db.session() as db:
            for _ in range(2):
                add_server(db, "grow")
        deadline = time.monotonic() + 20
        while cache.latest.by_key != {key_id: (3, 3)} and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cache.latest.by_key == {key_id: (3, 3)}
        with engine.connect() as conn:
            served = cache.get(conn)
        assert (served.by_key, served.live) == ({key_id: (3, 3)}, False)
    finally:
        cache.stop()
    assert cache._thread is None


def test_counts_older_than_three_refreshes_are_counted_again(testapp, as_admin, dbsession, counts):
    """After the refresh stopped (no views for a while), the next view counts live, not shows an old count."""
    counts.live_count_under, counts.refresh_seconds = 1, 3600
    keys_service.create_key(dbsession, "old")
    add_server(dbsession, "old")
    assert total(testapp.get("/admin/")) == "1"
    add_server(dbsession, "old")
    assert total(testapp.get("/admin/")) == "1"
    counts.latest = replace(counts.latest, counted_at=counts.latest.counted_at - timedelta(seconds=3 * 3600 + 1))
    page = testapp.get("/admin/")
    assert total(page) == "2" and page.html.select_one(".counts-note") is None


def test_the_refresh_stops_when_nobody_looks_and_survives_database_errors(caplog):
    from contextlib import contextmanager

    from sqlalchemy.exc import OperationalError

    calls = []

    @contextmanager
    def broken_read():
        calls.append(1)
        raise OperationalError("SELECT ...", {}, Exception("server closed the connection unexpectedly\nmore detail"))
        yield  # pragma: no cover

    cache = KeyCountsCache(broken_read, live_count_under=1, refresh_seconds=0.02, idle_seconds=0.5)
    cache.latest = sentinel = object()
    cache.start()
    deadline = time.monotonic() + 20
    while cache._thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not cache._thread.is_alive()              # stopped: no view within idle_seconds
    assert len(calls) >= 2 and cache.latest is sentinel   # kept trying, kept the last counts
    warnings = [r for r in caplog.records if "refreshing the start page's counts failed" in r.getMessage()]
    assert warnings and all(r.levelname == "WARNING" and r.exc_info is None for r in warnings)
    assert "server closed the connection unexpectedly" in warnings[0].getMessage()
    assert "more detail" not in warnings[0].getMessage()
