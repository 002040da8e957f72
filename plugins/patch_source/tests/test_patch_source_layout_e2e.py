"""The Patch Source list fits the screen, on a phone (390x844: each patchset a stacked card) and on a
desktop (1366x800: the table): no sideways scrolling of the page or of the table's card, and every
row's name, status and deploy / roll back button inside the viewport and not cut off by the card.
A real ``eportal serve`` on SQLite (a layout does not depend on the database) and Chromium; screenshots
go to ``tmp_path/screenshots`` (run with ``-s`` to see their paths)."""
from __future__ import annotations

import base64

import pytest
from playwright.sync_api import expect

from eportal_core.testing.browser import Shots, console_errors, log_in
from eportal_core.testing.live import http_request

pytestmark = pytest.mark.e2e

#: a long feed name: its status pill ("enabled on ...") is the widest thing in a row
LONG_FEED = "canary-europe-west-2"

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 800}


@pytest.fixture(scope="module")
def filled_server(start_ps_server, patch_archives):
    """Five patchsets: the first four enabled on LONG_FEED, the first three on main, the 5th only imported."""
    server = start_ps_server("sqlite")
    server.run_cli("kc.eportal", "feed", "-a", LONG_FEED)
    for archive in patch_archives.archives[:4]:
        server.run_cli("kc.eportal", "kcare", "deploy", str(archive.path), "--feed", LONG_FEED)
    server.run_cli("kc.eportal", "kcare", "deploy", str(patch_archives[4].path), "--disabled")
    auth = "Basic " + base64.b64encode(f"admin:{server.admin_password}".encode()).decode()
    status, body = http_request(server.url + "/admin/api/patchsets/manage", method="POST",
                                headers={"Authorization": auth},
                                data={"patchset": patch_archives[2].name, "feed": "main", "action": "enable-upto"})
    assert status == 200, body
    return server


def sideways(page) -> dict:
    """How far the page and each table card scroll sideways (0 when everything fits)."""
    return page.evaluate("""() => ({
        page: document.documentElement.scrollWidth - window.innerWidth,
        cards: Array.from(document.querySelectorAll('.table-card'), c => c.scrollWidth - c.clientWidth),
    })""")


def assert_shown_whole(locator, what: str) -> None:
    """``locator`` (one element) lies inside the viewport and inside its table card, which clips."""
    # the window scrolls up or down to it; nothing scrolls sideways (scrollIntoView would scroll the card)
    locator.evaluate("""el => { const r = el.getBoundingClientRect();
                                window.scrollBy(0, r.top + r.height / 2 - window.innerHeight / 2); }""")
    box = locator.bounding_box()
    assert box is not None and box["width"] > 0 and box["height"] > 0, f"{what} is not displayed"
    view = locator.page.viewport_size
    assert box["x"] >= 0 and box["x"] + box["width"] <= view["width"], f"{what} is off-screen sideways: {box}"
    assert box["y"] >= 0 and box["y"] + box["height"] <= view["height"], f"{what} is off-screen: {box}"
    card = locator.evaluate("""el => { const r = el.closest('.table-card').getBoundingClientRect();
                                      return {left: r.left, right: r.right}; }""")
    assert card["left"] <= box["x"] and box["x"] + box["width"] <= card["right"] + 0.5, \
        f"{what} is cut off by its card: {box} in {card}"


def check_list(page, server, feed: str, expected: dict[str, tuple[str, str]], shots: Shots) -> None:
    page.goto(server.url + "/admin/patch-source/" + ("" if feed == "main" else f"?feed={feed}"))
    rows = page.locator("table.patchset-table tbody tr")
    expect(rows).to_have_count(len(expected))
    assert sideways(page) == {"page": 0, "cards": [0]}
    for name, (status, button) in expected.items():
        row = page.locator(f'tr[data-patchset="{name}"]')
        assert_shown_whole(row.locator(".patchset-name"), f"the name of {name}")
        assert_shown_whole(row.locator(".patchset-status"), f"the status of {name}")
        expect(row.locator(".patchset-status")).to_have_text(status)
        assert_shown_whole(row.get_by_role("button", name=button), f"{button!r} of {name}")
    page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar belongs at the top of a full-page shot
    shots(f"{feed}-{page.viewport_size['width']}")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone-390", "desktop-1366"])
def test_the_patchset_list_fits_the_screen(viewport, filled_server, patch_archives, page, tmp_path):
    names = [a.name for a in patch_archives]
    deploy, rollback = "Deploy this patch, and all before it", "Roll back this patch, and all after it"
    page.set_viewport_size(viewport)
    log_in(page, filled_server)
    shots = Shots(page, tmp_path / "screenshots")
    check_list(page, filled_server, "main",
               {**{n: ("enabled on main", rollback) for n in names[:3]},
                **{n: ("downloaded", deploy) for n in names[3:]}}, shots)
    check_list(page, filled_server, LONG_FEED,
               {**{n: (f"enabled on {LONG_FEED}", rollback) for n in names[:4]}, names[4]: ("downloaded", deploy)}, shots)
    # the release date is part of every card, and the feeds a patchset is also enabled on
    first = page.locator(f'tr[data-patchset="{names[0]}"]')
    assert_shown_whole(first.locator(".patchset-released"), f"the release date of {names[0]}")
    expect(first.locator(".badge.tag")).to_have_text(["main"])
    assert console_errors(page) == []
