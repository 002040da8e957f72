"""The start page owns its counts cache (views/home.py wires it, from the validated settings), its
words and links follow the one check-in window (services.key_counts.CHECKIN_WINDOW), and the
session cookie takes its declared name."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from eportal_core.services.key_counts import CHECKIN_WINDOW, KeyCountsCache
from eportal_core.testing import login


def test_the_cache_is_wired_by_the_start_page_from_the_settings(app):
    cache = app.registry["key_counts"]
    settings = app.registry.settings
    assert isinstance(cache, KeyCountsCache) and cache.window == CHECKIN_WINDOW
    assert cache.live_count_under == settings["eportal.start_page.live_count_under"]
    assert cache.refresh_seconds == settings["eportal.start_page.refresh_seconds"]


@pytest.fixture
def window(app):
    cache = app.registry["key_counts"]
    saved = cache.window
    cache.stop()
    cache.latest = None
    yield cache
    cache.window = saved
    cache.latest = None


@pytest.mark.parametrize("hours, recent, silent", [(48, "-2", "2"), (36, "-36h", "36h")])
def test_the_page_says_and_links_the_window_the_counts_were_taken_with(testapp, as_admin, window, hours, recent, silent):
    window.window = timedelta(hours=hours)
    page = testapp.get("/admin/")
    text = page.html.get_text(" ", strip=True)
    assert f"Checked in · {hours} h" in text and f"Silent · {hours} h" in text
    assert f"during the past {hours} hours" in text and f"({hours} h)" in text
    hrefs = [a["href"] for a in page.html.select("a[href*='checkin_age']")]
    ages = {parse_qs(urlsplit(h).query)["checkin_age"][0] for h in hrefs}
    assert ages == {recent, silent}


def test_the_session_cookie_takes_its_declared_name(make_testapp, make_user):
    client = make_testapp(**{"eportal.session.cookie_name": "portal_b"})
    _user, password = make_user("cookie-admin", "Cookie-Secret-1")
    login(client, "cookie-admin", password)
    assert "portal_b" in client.cookies and "eportal_session" not in client.cookies
    assert client.get("/admin/").status_int == 200  # the named cookie carries the session
