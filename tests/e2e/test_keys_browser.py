"""Keys and servers in a real Chromium against a real ``eportal serve``: the key form's four buttons,
servers registering over HTTP like agents, the key's server list with filters, a server's page,
remove selected and remove key through the confirmation dialog. Screenshots (desktop 1366x800 and
phone 390x844) go to the test's ``tmp_path/screenshots``; run with ``-s`` to see their paths."""
from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request

import pytest
from playwright.sync_api import expect

from eportal_core.testing.browser import Shots, console_errors, log_in, nav_click

pytestmark = pytest.mark.e2e


@pytest.fixture
def shot(page, tmp_path):
    return Shots(page, tmp_path / "screenshots")


def register(server, key: str, hostname: str, tags: str | None = None, euname: str = "5.15.0-91-generic") -> str:
    """Register like ``kcarectl --register KEY`` does (protocol.md §2), with what the agent reports."""
    data = {"hostname": hostname, "euname": euname}
    if tags is not None:
        data["tags"] = tags
    request = urllib.request.Request(
        f"{server.url}/admin/api/kcare/register_server.json?{urllib.parse.urlencode({'key': key})}",
        data=urllib.parse.urlencode(data).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as resp:
        answer = json.loads(resp.read())
    assert answer["code"] == 0, answer
    return answer["server_id"]


def fill_key_form(page, key: str, note: str = "", limit: str = "0") -> None:
    page.fill("#key", key)
    page.fill("#note", note)
    page.fill("#server_limit", limit)


def inventory_row(page, key: str):
    link = page.locator("a.key-link", has_text=re.compile(f"^{re.escape(key)}$"))
    return page.locator("table.key-table tbody tr").filter(has=link)


def answer_dialog(page, button: str) -> str:
    """The open confirmation <dialog>: its question, after clicking ``button``."""
    modal = page.locator("dialog.confirm-dialog[open]")
    expect(modal).to_be_visible()
    question = modal.locator("#confirm-message").inner_text()
    modal.get_by_role("button", name=button).click()
    expect(modal).to_have_count(0)
    return question


def test_keys_and_servers_in_the_browser(live_server, page, shot):
    url = live_server.url
    log_in(page, live_server)
    expect(page.get_by_role("heading", level=1)).to_have_text("Keys")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Keys")).to_have_attribute("aria-current", "page")
    expect(page.get_by_text("No keys yet")).to_be_visible()

    # --- Save
    page.get_by_role("link", name="Create key").first.click()
    expect(page).to_have_url(url + "/admin/keys/add")
    expect(page.locator("#feed")).to_have_value("main")
    fill_key_form(page, "alpha", "web farm", "5")
    shot("key-form")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page).to_have_url(url + "/admin/")
    expect(page.locator(".flash-ok")).to_contain_text("Key 'alpha' created.")
    expect(inventory_row(page, "alpha")).to_contain_text("web farm")

    # --- Save and Add Another, then Save and Continue Editing
    page.get_by_role("link", name="Create key").first.click()
    fill_key_form(page, "bravo", "databases")
    page.get_by_role("button", name="Save and Add Another").click()
    expect(page).to_have_url(url + "/admin/keys/add")
    expect(page.locator(".flash-ok")).to_contain_text("Key 'bravo' created.")
    expect(page.locator("#key")).to_have_value("")
    fill_key_form(page, "", "generated", "0")   # an empty key: a generated one
    page.get_by_role("button", name="Save and Continue Editing").click()
    expect(page).to_have_url(re.compile(re.escape(url) + r"/admin/keys/[A-Za-z0-9]{16}/edit$"))
    generated = page.locator("#key").input_value()
    assert re.fullmatch(r"[A-Za-z0-9]{16}", generated)
    expect(page.get_by_role("heading", level=1)).to_contain_text(generated)

    # --- a validation error keeps what was typed
    page.fill("#server_limit", "-4")
    page.locator("#server_limit").evaluate("el => el.removeAttribute('min')")  # let the server judge it
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("form.key-form .flash-error")).to_contain_text("Server limit must be between 0")
    expect(page.locator("#server_limit")).to_have_value("-4")
    shot("key-form-error")

    # --- Cancel saves nothing
    page.get_by_role("link", name="Cancel").click()
    expect(page).to_have_url(url + "/admin/")
    page.get_by_role("link", name="Create key").first.click()
    fill_key_form(page, "never-saved")
    page.get_by_role("link", name="Cancel").click()
    expect(page).to_have_url(url + "/admin/")
    expect(inventory_row(page, "never-saved")).to_have_count(0)
    expect(page.locator("table.key-table tbody tr")).to_have_count(3)

    # --- servers register over HTTP, like agents
    register(live_server, "alpha", "web1", "env:prod;ubuntu")
    register(live_server, "alpha", "web2", "env:dev;ubuntu")
    register(live_server, "alpha", "web3", "env:prod;centos")
    register(live_server, "bravo", "db1", "env:prod")
    register(live_server, "bravo", "db2")
    page.reload()
    expect(page.locator("#total-servers")).to_have_text("5")
    expect(page.locator("#total-checked-in")).to_have_text("5")
    expect(inventory_row(page, "alpha").locator("td").nth(4)).to_have_text("3")
    shot("start-page")

    # --- the key's servers, filtered by tag
    inventory_row(page, "alpha").locator("a.key-link").click()
    expect(page).to_have_url(url + "/admin/kcserver/?key=alpha")
    expect(page.get_by_role("heading", level=1)).to_have_text("Servers of key alpha")
    expect(page.locator("table.server-table tbody tr")).to_have_count(3)
    page.fill("#f-tag", "env:prod")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("table.server-table tbody tr")).to_have_count(2)
    expect(page.locator("#f-tag")).to_have_value("env:prod")
    expect(page.locator("a.server-link")).to_have_text(["web3", "web1"])  # newest registered first
    shot("servers-filtered")

    # --- sorting by hostname keeps the filter
    page.locator("table.server-table th", has_text="Hostname").get_by_role("link").click()
    expect(page.locator("a.server-link")).to_have_text(["web1", "web3"])
    expect(page.locator("#f-tag")).to_have_value("env:prod")

    # --- one server's page, its tags edited
    page.get_by_role("link", name="web1").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("web1")
    expect(page.locator("dl.server-record").last).to_contain_text("env:prod")
    page.fill("#tags", "env:prod;ubuntu;role:web")
    page.get_by_role("button", name="Save tags").click()
    expect(page.locator(".flash-ok")).to_contain_text("Tags of web1 saved.")
    expect(page.locator(".card-head .tag-list .tag")).to_have_text(["env:prod", "ubuntu", "role:web"])
    shot("server-page")

    # --- remove selected: the dialog counts the checked rows
    page.goto(url + "/admin/kcserver/?key=bravo")
    expect(page.locator("table.server-table tbody tr")).to_have_count(2)
    page.locator("input[data-check-all]").check()
    expect(page.locator("[data-checked-count]")).to_have_text("2 selected")
    page.get_by_role("button", name="Remove selected").click()
    assert answer_dialog(page, "Cancel") == "Remove the 2 selected servers? They must register again to get patches."
    expect(page.locator("table.server-table tbody tr")).to_have_count(2)
    page.locator("input[data-check-all]").uncheck()
    page.locator("tr", has_text="db2").locator("input[type=checkbox]").check()
    page.get_by_role("button", name="Remove selected").click()
    assert answer_dialog(page, "Remove servers") == "Remove the selected server? It must register again to get patches."
    expect(page.locator(".flash-ok")).to_contain_text("Removed 1 server.")
    expect(page.locator("a.server-link")).to_have_text(["db1"])

    # --- remove a key: the dialog states its servers, which go with it
    nav_click(page, "Keys")  # loaded: the Remove button asks through eportal.js's dialog
    inventory_row(page, "alpha").get_by_role("button", name="Remove").click()
    expect(page.locator("dialog.confirm-dialog[open]")).to_be_visible()
    page.wait_for_timeout(300)  # the dialog's fade-in
    shot("remove-key-dialog", full_page=False)
    assert answer_dialog(page, "Remove key") == "Remove key alpha and its 3 servers?"
    expect(page.locator(".flash-ok")).to_contain_text("Key 'alpha' removed, with its 3 servers.")
    expect(inventory_row(page, "alpha")).to_have_count(0)
    expect(page.locator("#total-servers")).to_have_text("1")
    page.get_by_role("link", name="All servers").first.click()
    expect(page.locator("a.server-link")).to_have_text(["db1"])
    page.get_by_role("link", name="Reset filters").click()
    expect(page).to_have_url(url + "/admin/kcserver/")

    # --- a phone
    register(live_server, "bravo", "phone-test-host-with-a-long-name", "env:prod;ubuntu;rack:b12",
             euname="5.14.0-362.24.1.el9_3.x86_64")
    page.goto(url + "/admin/kcserver/")
    shot("servers-desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(url + "/admin/")
    shot("start-page-phone")
    page.goto(url + "/admin/kcserver/?tag=env:prod")
    shot("servers-phone")
    page.get_by_role("link", name="phone-test-host-with-a-long-name").click()
    shot("server-page-phone")
    page.goto(url + f"/admin/keys/{generated}/edit")
    shot("key-form-phone")

    assert console_errors(page, allow_statuses=(400,)) == []
