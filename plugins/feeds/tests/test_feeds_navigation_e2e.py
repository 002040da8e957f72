"""Settings → Feeds in a real Chromium against a real ``eportal serve``: the Settings group of the
navigation bar opened by mouse and by keyboard at 1366 px, and as a section of the phone menu at 390 px.

Screenshots go to ``tmp_path/screenshots`` (run with ``-s`` to see their paths). Each test ends
with a clean browser console: no CSP violation (the menu runs from the bundled JS file), no error.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from eportal_core.testing.browser import Shots, console_errors, log_in

pytestmark = pytest.mark.e2e

ENTRIES = ["Feeds", "Users", "API tokens"]  # Feeds (order 800) comes before the core's entries
#: the element itself is what a pointer at its middle reaches
ON_TOP = """e => {
  const r = e.getBoundingClientRect();
  return e.contains(document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2));
}"""


def nav(page):
    return page.get_by_role("navigation", name="Main")


def settings_button(page):
    return nav(page).get_by_role("button", name="Settings", exact=True)


def feeds_link(page):
    return nav(page).get_by_role("link", name="Feeds", exact=True)


def is_focused(locator) -> bool:
    return locator.evaluate("e => e === document.activeElement")


def assert_clean_console(page) -> None:
    errors = console_errors(page)
    assert errors == [], "browser console errors:\n" + "\n".join(errors)


def assert_settings_is_current(page) -> None:
    button = settings_button(page)
    expect(button).to_have_attribute("aria-current", "true")
    expect(button.locator("xpath=..")).to_have_class(re.compile(r"\bnav-group\b.*\bcurrent\b"))
    # the same accent underline as a current top-level link
    underline = button.evaluate("e => getComputedStyle(e, '::after').backgroundColor")
    keys_link = nav(page).get_by_role("link", name="Keys", exact=True)
    keys_link.evaluate("e => e.setAttribute('aria-current', 'page')")
    try:
        assert underline == keys_link.evaluate("e => getComputedStyle(e, '::after').backgroundColor")
    finally:
        keys_link.evaluate("e => e.removeAttribute('aria-current')")


def test_settings_feeds_by_mouse(live_server, page, tmp_path):
    shot = Shots(page, tmp_path / "screenshots")
    log_in(page, live_server)
    button, feeds = settings_button(page), feeds_link(page)
    expect(button).to_be_visible()
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(button).not_to_have_attribute("aria-current", "true")  # the start page is not in Settings
    expect(feeds).to_be_hidden()
    shot("1366-settings-closed", full_page=False)

    button.click()
    expect(button).to_have_attribute("aria-expanded", "true")
    menu = nav(page).get_by_role("group", name="Settings")
    expect(menu.get_by_role("link")).to_have_text(ENTRIES)
    # the menu hangs below the bar, inside the window, and nothing clips or covers its entries (the
    # bar scrolls sideways when crowded, which would cut off a menu hanging out of it)
    bar = page.locator("header.topbar").bounding_box()
    box = menu.bounding_box()
    assert box["y"] >= bar["y"] + bar["height"] - 1 and box["x"] + box["width"] <= 1366
    for link in menu.get_by_role("link").all():
        assert link.evaluate(ON_TOP), f"{link.text_content()} is clipped or covered"
    shot("1366-settings-open", full_page=False)

    # a click elsewhere closes it
    page.get_by_role("heading", level=1).click()
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(feeds).to_be_hidden()

    # Settings → Feeds
    button.click()
    feeds.click()
    expect(page).to_have_url(live_server.url + "/admin/feeds/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Feeds")
    expect(button).to_have_attribute("aria-expanded", "false")
    assert_settings_is_current(page)
    page.wait_for_load_state()  # the menu opens through eportal.js (deferred)
    button.click()
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(feeds).to_have_attribute("aria-current", "page")
    expect(nav(page).get_by_role("link", name="Users", exact=True)).not_to_have_attribute("aria-current", "page")
    shot("1366-feeds-settings-open", full_page=False)
    # Escape closes it again
    page.keyboard.press("Escape")
    expect(button).to_have_attribute("aria-expanded", "false")
    assert_clean_console(page)


def test_settings_feeds_by_keyboard(live_server, page, tmp_path):
    shot = Shots(page, tmp_path / "screenshots")
    log_in(page, live_server)
    button, feeds = settings_button(page), feeds_link(page)
    users = nav(page).get_by_role("link", name="Users", exact=True)
    # Tab from the top of the page until the Settings button has the focus
    for _ in range(20):
        page.keyboard.press("Tab")
        if is_focused(button):
            break
    expect(button).to_be_focused()

    # Enter opens it, Tab walks into it, Escape closes it and gives the focus back
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Tab")
    expect(feeds).to_be_focused()
    shot("1366-keyboard-feeds-focused", full_page=False)
    page.keyboard.press("Escape")
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(button).to_be_focused()

    # Space opens it too; the arrow keys move through it
    page.keyboard.press("Space")
    expect(button).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("ArrowDown")
    expect(feeds).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(users).to_be_focused()
    page.keyboard.press("ArrowUp")
    expect(feeds).to_be_focused()

    # tabbing past its last entry closes it
    for _ in ENTRIES:
        page.keyboard.press("Tab")
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(feeds).to_be_hidden()

    # ArrowDown on the button opens it at its first entry; Enter follows the link
    button.focus()
    page.keyboard.press("ArrowDown")
    expect(feeds).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(live_server.url + "/admin/feeds/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Feeds")
    assert_settings_is_current(page)
    assert_clean_console(page)


def test_settings_feeds_in_the_phone_menu(live_server, page, tmp_path):
    shot = Shots(page, tmp_path / "screenshots")
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server)
    menu_button = page.get_by_role("button", name="Menu")
    section = nav(page).get_by_role("group", name="Settings")
    expect(section).to_be_hidden()
    menu_button.click()
    # no Settings button on a phone: a labelled section of the menu, always open
    expect(settings_button(page)).to_be_hidden()
    expect(section).to_be_visible()
    expect(page.locator(".nav-group-label")).to_have_text("Settings")
    expect(page.locator(".nav-group-label")).to_be_visible()
    expect(section.get_by_role("link")).to_have_text(ENTRIES)
    for link in section.get_by_role("link").all():
        box = link.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["height"] >= 40  # a thumb's target
    shot("390-menu-open", full_page=False)

    section.get_by_role("link", name="Feeds", exact=True).click()
    expect(page).to_have_url(live_server.url + "/admin/feeds/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Feeds")
    page.wait_for_load_state()  # the menu opens through eportal.js (deferred)
    menu_button.click()
    expect(section).to_be_visible()
    current = section.get_by_role("link", name="Feeds", exact=True)
    expect(current).to_have_attribute("aria-current", "page")
    other = section.get_by_role("link", name="Users", exact=True)
    background = "e => getComputedStyle(e).backgroundColor"
    assert current.evaluate(background) != other.evaluate(background)  # the current entry is marked
    shot("390-menu-open-on-feeds", full_page=False)
    # Escape closes the phone menu as before
    page.keyboard.press("Escape")
    expect(section).to_be_hidden()
    assert_clean_console(page)
