"""The console in a real Chromium against a real ``eportal serve`` (SQLite, and one login on PostgreSQL).

Every step is saved as a screenshot under the test's ``tmp_path/screenshots`` (the paths are printed;
run with ``-s`` to see them). Each test ends by checking the browser console: no CSP violations,
no JavaScript errors, no failed requests.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from eportal_core.testing.browser import Shots, console_errors, log_in, nav_click

pytestmark = pytest.mark.e2e

VIEWER, VIEWER_PW = "viewer", "Viewer-Secret-1"
CONFIRM_WORDS = re.compile(r"\b(delete|confirm|ok|yes|continue|remove)\b", re.I)
CANCEL_WORDS = re.compile(r"\b(cancel|no|keep|close|back)\b", re.I)


@pytest.fixture
def shot(page, tmp_path):
    return Shots(page, tmp_path / "screenshots")


def assert_clean_console(page, *allow_statuses: int) -> None:
    errors = console_errors(page, allow_statuses=allow_statuses)
    assert errors == [], "browser console errors:\n" + "\n".join(errors)


def assert_on_dashboard(page, server, username: str, role: str) -> None:
    expect(page).to_have_url(server.url + "/admin/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Keys")
    who = page.locator("header .who")
    expect(who.locator(".username")).to_have_text(username)
    expect(who.locator(".badge")).to_have_text(role)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Keys")).to_be_visible()
    expect(nav.get_by_role("button", name="Settings")).to_be_visible()  # Users is in its menu
    expect(nav.get_by_role("link", name="Keys")).to_have_attribute("aria-current", "page")
    expect(who.get_by_role("button", name="Log out")).to_be_visible()


@pytest.fixture(scope="module")
def viewer(live_server):
    live_server.run_cli("kc.eportal", "-a", VIEWER, "-p", VIEWER_PW, "-r")
    return VIEWER, VIEWER_PW


# --- (a) login ------------------------------------------------------------------------------

def test_admin_logs_in_and_sees_the_console(live_server, page, shot):
    page.goto(live_server.url + "/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login\?next="))
    expect(page.locator("#login")).to_be_focused()
    shot("login-form")
    log_in(page, live_server, "admin", live_server.admin_password)
    assert_on_dashboard(page, live_server, "admin", "admin")
    shot("dashboard")
    nav_click(page, "Users", group="Settings")
    expect(page.get_by_role("heading", level=1)).to_have_text("Users")
    expect(page.get_by_role("row").filter(has_text="admin").first).to_be_visible()
    shot("users")
    assert_clean_console(page)


def test_login_on_postgresql(live_server_pg, page, shot):
    log_in(page, live_server_pg, "admin", live_server_pg.admin_password)
    assert_on_dashboard(page, live_server_pg, "admin", "admin")
    shot("dashboard-postgresql")
    status, _, body = live_server_pg.get("/admin/health")
    assert status == 200 and b"postgresql" in body
    assert_clean_console(page)


# --- (b) a failed login ---------------------------------------------------------------------

def test_wrong_password_shows_the_error_and_stays_on_the_login_page(live_server, page, shot):
    log_in(page, live_server, "admin", "not-the-password", succeeds=False)
    expect(page).to_have_url(live_server.url + "/admin/login")
    expect(page.get_by_role("alert")).to_contain_text("Wrong user name or password.")
    expect(page.locator("#login")).to_have_value("admin")
    expect(page.locator("#password")).to_have_value("")
    expect(page.locator("header.topbar")).to_have_count(0)
    shot("login-failed")
    # the console stays closed
    page.goto(live_server.url + "/admin/users/")
    expect(page).to_have_url(re.compile(r"/admin/login\?next=%2Fadmin%2Fusers%2F$"))
    assert_clean_console(page, 401)


# --- (c) logout -----------------------------------------------------------------------------

def test_logout_returns_to_the_login_page(live_server, page, shot):
    log_in(page, live_server, "admin", live_server.admin_password)
    assert_on_dashboard(page, live_server, "admin", "admin")
    shot("before-logout")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/admin/login\?logged_out=1$"))
    expect(page.get_by_text("You have logged out.")).to_be_visible()
    shot("logged-out")
    page.goto(live_server.url + "/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login\?next=%2Fadmin%2F$"))
    expect(page.locator("#login")).to_be_visible()
    shot("admin-redirects-to-login")
    assert_clean_console(page)


# --- (d) a read-only user -------------------------------------------------------------------

def test_readonly_user_sees_users_without_actions_and_is_refused(live_server, page, shot, viewer):
    log_in(page, live_server, *viewer)
    assert_on_dashboard(page, live_server, VIEWER, "readonly")
    page.goto(live_server.url + "/admin/users/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Users")
    expect(page.get_by_role("row").filter(has_text=VIEWER)).to_have_count(1)
    main = page.locator("main")
    # no buttons (a flash message's close button is no action), no forms, no popovers
    expect(main.locator("button:not(.flash-close), input[type=submit], summary")).to_have_count(0)
    expect(main.locator("form")).to_have_count(0)
    expect(main.get_by_role("link", name="Add user")).to_have_count(0)
    expect(main.get_by_role("columnheader", name="Actions")).to_have_count(0)
    shot("readonly-users")

    # a mutating request with a valid CSRF token still meets the permission check
    refused = page.evaluate("""async () => {
        const token = document.querySelector('input[name=csrf_token]').value;
        const body = new URLSearchParams({csrf_token: token, username: 'intruder', role: 'admin',
                                          password: 'Intruder-Secret-1', confirm: 'Intruder-Secret-1'});
        const r = await fetch('/admin/users/add', {method: 'POST', body, redirect: 'manual'});
        return [r.status, await r.text()];
    }""")
    assert refused[0] == 403 and "read-only" in refused[1]
    # and a form posted by the browser shows the refusal page
    page.evaluate("""() => {
        const token = document.querySelector('input[name=csrf_token]').value;
        const form = document.createElement('form');
        form.method = 'post';
        form.action = '/admin/users/admin/delete';
        const input = document.createElement('input');
        input.type = 'hidden'; input.name = 'csrf_token'; input.value = token;
        form.appendChild(input);
        document.body.appendChild(form);
        form.submit();
    }""")
    expect(page).to_have_url(live_server.url + "/admin/users/admin/delete")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect(page.locator("main")).to_contain_text("read-only")
    shot("readonly-refused")

    listing = live_server.run_cli("kc.eportal", "-l").stdout
    usernames = re.findall(r"^\s*\d+ \| (\S+)$", listing, re.M)
    assert "admin" in usernames and "intruder" not in usernames, listing
    assert_clean_console(page, 403)


# --- (e) add and delete a user through the forms --------------------------------------------

def _pick_button(buttons, words):
    """The button in a custom confirmation dialog whose text or value matches ``words``."""
    for i in range(buttons.count()):
        button = buttons.nth(i)
        label = " ".join(filter(None, [button.inner_text(), button.get_attribute("value") or "",
                                       button.get_attribute("aria-label") or ""]))
        if words.search(label):
            return button
    return None


def confirm_delete(page, shot, row, *, accept: bool) -> str:
    """Click the row's Delete button and answer the confirmation, whichever kind the UI uses:
    a ``<dialog>`` built by eportal.js, or ``window.confirm``. Returns the question shown."""
    asked: list[str] = []

    def on_dialog(dialog):
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.on("dialog", on_dialog)
    try:
        page.wait_for_load_state()  # eportal.js (deferred) turns the Delete form's submit into a dialog
        row.get_by_role("button", name="Delete").click()
        modal = page.locator("dialog[open]")
        for _ in range(60):  # up to 3 s for one or the other
            if asked or modal.count():
                break
            page.wait_for_timeout(50)
        if asked:
            return asked[0]
        if not modal.count():
            raise AssertionError("Delete asked for no confirmation (no <dialog> and no window.confirm)")
        expect(modal).to_be_visible()
        shot("delete-confirmation" if accept else "delete-confirmation-cancel")
        question = modal.inner_text()
        buttons = modal.locator("button, input[type=submit], input[type=button]")
        button = _pick_button(buttons, CONFIRM_WORDS if accept else CANCEL_WORDS)
        if button is not None:
            button.click()
        elif not accept:
            page.keyboard.press("Escape")
        else:
            raise AssertionError(f"no confirm button in the dialog: {question!r}")
        expect(modal).to_have_count(0)
        return question
    finally:
        page.remove_listener("dialog", on_dialog)


def test_admin_adds_and_deletes_a_user(live_server, page, shot):
    log_in(page, live_server, "admin", live_server.admin_password)
    assert_on_dashboard(page, live_server, "admin", "admin")
    page.goto(live_server.url + "/admin/users/")
    page.get_by_role("link", name="Add user").click()
    expect(page).to_have_url(live_server.url + "/admin/users/add")
    expect(page.get_by_role("heading", level=1)).to_have_text("Add user")
    page.fill("#username", "carol")
    page.fill("#description", "made by the e2e test")
    page.select_option("#role", "readonly")
    page.fill("#password", "Carol-Secret-1")
    page.fill("#confirm", "Carol-Secret-1")
    shot("add-user-form")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(live_server.url + "/admin/users/")
    expect(page.locator(".flash-ok")).to_contain_text("User 'carol' added.")
    row = page.get_by_role("row").filter(has=page.get_by_text("carol", exact=True))
    expect(row).to_have_count(1)
    expect(row.locator(".badge")).to_have_text("readonly")
    shot("user-added")
    assert "carol" in live_server.run_cli("kc.eportal", "-l").stdout

    # cancelling the confirmation keeps the user
    question = confirm_delete(page, shot, row, accept=False)
    assert "carol" in question
    expect(page).to_have_url(live_server.url + "/admin/users/")
    expect(row).to_have_count(1)

    question = confirm_delete(page, shot, row, accept=True)
    assert "carol" in question
    expect(page.locator(".flash-ok")).to_contain_text("User 'carol' deleted.")
    expect(row).to_have_count(0)
    shot("user-deleted")
    assert "carol" not in live_server.run_cli("kc.eportal", "-l").stdout
    assert_clean_console(page)
