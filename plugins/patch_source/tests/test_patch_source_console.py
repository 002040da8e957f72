"""The Patch Source console (WebTest on the real app, SQLite and PostgreSQL): the settings form never
shows the password back, validates the URL and the folder, and starts a check; the list shows every
status per feed, the exact confirmation texts (from ``services.deploy.preview``), deploys and rolls
back; "Check now" and its failures; the changelog; the health check; read-only users."""
from __future__ import annotations

import logging

import pytest
from eportal_patch_source.access import PREFIX
from patch_source_helpers import offer
from sqlalchemy import select

from eportal_core.api import AuditEvent, Feed, SiteSetting
from eportal_core.testing import csrf_token, login

PASSWORD = "upstream-Pass-1"


@pytest.fixture
def admin(ps_client, make_user):
    client = ps_client()
    make_user("alice", "Alice-Secret-1")
    login(client, "alice", "Alice-Secret-1")
    return client


def save_settings(client, **fields):
    form = client.get("/admin/patch-source/settings").forms["patch-source-form"]
    for name, value in fields.items():
        if name == "type":
            form["type"].value = value
        elif name == "clear_password":
            form["clear_password"].checked = value
        else:
            form[name] = value
    return form.submit(status="*")


def configure(client, upstream, **extra):
    res = save_settings(client, type="http", url=upstream.url, login=upstream.login, password=upstream.password, **extra)
    assert res.status_int == 303, res.text
    return res.follow()


def rows(page) -> dict[str, dict]:
    out = {}
    for tr in page.html.select("table.patchset-table tbody tr"):
        deploy_form = tr.select_one("form.deploy-form")
        rollback_form = tr.select_one("form.rollback-form")
        out[tr["data-patchset"]] = {
            "status": tr.select_one(".patchset-status").get_text(strip=True),
            "deploy": deploy_form["data-confirm"] if deploy_form else None,
            "rollback": rollback_form["data-confirm"] if rollback_form else None,
            "feeds": [b.get_text(strip=True) for b in tr.select(".badge.tag")],
        }
    return out


def post(client, url, **params):
    return client.post(url, {**params, "csrf_token": csrf_token(client)}, status=303).follow()


def test_settings_never_show_the_password(admin, upstream, dbsession, caplog):
    caplog.set_level(logging.DEBUG)
    page = admin.get("/admin/patch-source/settings")
    assert page.html.select_one("#password")["value"] == "" and "No password is stored" in page.text
    configure(admin, upstream)
    stored = {r.name: r.value for r in dbsession.scalars(select(SiteSetting).where(SiteSetting.name.like(PREFIX + "%")))}
    assert stored[PREFIX + "password"] == PASSWORD and stored[PREFIX + "url"] == upstream.url
    page = admin.get("/admin/patch-source/settings")
    assert PASSWORD not in page.text
    assert page.html.select_one("#password")["value"] == ""
    assert "A password is stored. Leave this empty to keep it." in page.text
    assert page.html.select_one("#login")["value"] == upstream.login
    assert PASSWORD not in admin.get("/admin/patch-source/").text
    # an empty password keeps the stored one; the checkbox removes it
    save_settings(admin, login="someone-else")
    dbsession.expire_all()
    assert dbsession.get(SiteSetting, PREFIX + "password").value == PASSWORD
    assert dbsession.get(SiteSetting, PREFIX + "login").value == "someone-else"
    save_settings(admin, clear_password=True)
    dbsession.expire_all()
    assert dbsession.get(SiteSetting, PREFIX + "password").value == ""
    audit = [e.detail for e in dbsession.scalars(select(AuditEvent).where(AuditEvent.action == "patch_source.access"))]
    assert len(audit) == 3 and "password" in audit[0]
    assert not any(PASSWORD in d for d in audit)
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize("fields, message, field", [
    ({"type": "http", "url": "patches.example.com"}, "The URL must start with http:// or https:// and name a host.", "url"),
    ({"type": "http", "url": "https://u:p@patches.example.com/"}, "Put the login and password in their own fields", "url"),
    ({"type": "directory", "path": "/nonexistent/eportal-archives"},
     "The folder /nonexistent/eportal-archives does not exist (or is not a folder).", "path"),
])
def test_settings_are_validated(admin, dbsession, fields, message, field):
    res = save_settings(admin, **fields)
    assert res.status_int == 400
    assert message in res.html.select_one(".flash-error").get_text()
    assert "field-error" in res.html.select_one(f"#{field}").parent["class"]
    assert dbsession.scalar(select(SiteSetting).where(SiteSetting.name.like(PREFIX + "%"))) is None


def test_saving_checks_the_source_and_lists_patchsets_oldest_first(admin, upstream, upstream_archives):
    good = upstream_archives.good
    offer(upstream, reversed(good))  # the index order does not matter: the deploy order does
    page = configure(admin, upstream)
    assert "Patch source saved." in page.text
    assert list(rows(page)) == [a.name for a in good]
    assert {r["status"] for r in rows(page).values()} == {"downloaded"}
    assert "5 patchsets listed" in page.text
    assert page.html.select_one(".poll-state .pill-ok").get_text(strip=True) == "ok"
    assert page.html.select_one(".patch-last-task") is None  # a check's outcome is the "Last check" card
    nav = {a.get_text(strip=True): a for a in page.html.select('nav[aria-label="Main"] a')}
    assert nav["Patch Source"].get("aria-current") == "page"


def test_deploy_and_rollback_ask_exactly_what_changes(admin, upstream, upstream_archives, dbsession):
    good = upstream_archives.good
    names = [a.name for a in good]
    offer(upstream, good)
    page = configure(admin, upstream)
    listed = rows(page)
    assert listed[names[2]]["deploy"] == f"On feed main, enable 3 patchsets: {', '.join(names[:3])}."
    assert listed[names[0]]["deploy"] == f"On feed main, enable 1 patchset: {names[0]}."
    assert all(r["rollback"] is None for r in listed.values())
    form = page.html.select_one(f'tr[data-patchset="{names[2]}"] form.deploy-form')
    assert form["data-confirm-title"] == f"Deploy {names[2]} to main"
    assert form.select_one("button").get_text(strip=True) == "Deploy this patch, and all before it"

    page = post(admin, "/admin/patch-source/deploy", patchset=names[2], feed="main")
    assert f"Enabled on main: {', '.join(names[:3])}." in page.text
    listed = rows(page)
    assert [r["status"] for r in listed.values()] == ["enabled on main"] * 3 + ["downloaded"] * 2
    assert listed[names[1]]["rollback"] == (f"On feed main, disable 2 patchsets: {names[1]}, {names[2]}. "
                                            f"Servers on main go back to the patches of {names[0]}.")
    assert listed[names[0]]["rollback"] == (f"On feed main, disable 3 patchsets: {', '.join(names[:3])}. "
                                            "Servers on main are left with no patches of this product.")
    assert listed[names[4]]["deploy"] == f"On feed main, enable 2 patchsets: {names[3]}, {names[4]}."
    assert listed[names[1]]["deploy"] is None

    page = post(admin, "/admin/patch-source/rollback", patchset=names[1], feed="main")
    assert f"Disabled on main: {names[1]}, {names[2]}." in page.text
    listed = rows(page)
    assert [r["status"] for r in listed.values()] == ["enabled on main", "disabled on main", "disabled on main",
                                                      "downloaded", "downloaded"]
    assert listed[names[2]]["deploy"] == f"On feed main, enable 2 patchsets: {names[1]}, {names[2]}."

    # another feed: its own tab, its own statuses; main's state shows as a badge
    dbsession.add(Feed(name="beta"))
    dbsession.commit()
    page = admin.get("/admin/patch-source/?feed=beta")
    assert page.html.select_one(".feed-tabs a[aria-current=page]").get_text(strip=True) == "beta"
    listed = rows(page)
    assert listed[names[0]] == {"status": "downloaded", "feeds": ["main"], "rollback": None,
                                "deploy": f"On feed beta, enable 1 patchset: {names[0]}."}
    page = post(admin, "/admin/patch-source/deploy", patchset=names[4], feed="beta")
    assert "Enabled on beta: " + ", ".join(names) + "." in page.text
    assert page.request.url.endswith("/admin/patch-source/?feed=beta")


def test_deploy_downloads_what_is_missing_first(ps_client, make_user, upstream, upstream_archives):
    client = ps_client(**{"patch_source.auto_download": "false"})
    make_user("alice", "Alice-Secret-1")
    login(client, "alice", "Alice-Secret-1")
    good = upstream_archives.good
    names = [a.name for a in good]
    offer(upstream, good)
    page = configure(client, upstream)
    listed = rows(page)
    assert {r["status"] for r in listed.values()} == {"not downloaded"}
    assert listed[names[1]]["deploy"] == (f"On feed main, enable 2 patchsets: {names[0]}, {names[1]}. Not downloaded yet, "
                                          f"so downloaded from the source first: {names[0]}, {names[1]}.")
    page = post(client, "/admin/patch-source/deploy", patchset=names[1], feed="main")
    assert f"Downloading {names[0]}, {names[1]} first; then {names[1]} is deployed to main." in page.text
    assert [r["status"] for r in rows(page).values()] == ["enabled on main"] * 2 + ["not downloaded"] * 3
    assert (f"Deploying {names[1]} to main: downloaded {names[0]}, {names[1]}; enabled on main: {names[0]}, {names[1]}"
            in page.html.select_one(".patch-last-task").get_text(" ", strip=True))


def test_check_now_and_its_failures_show_on_the_page_and_in_health(admin, upstream, upstream_archives):
    good, corrupt = upstream_archives.good, upstream_archives.corrupt
    offer(upstream, good[:2])
    configure(admin, upstream)
    assert admin.get("/admin/health").json["checks"][-1]["name"] == "patch_source"
    upstream.password = "rotated-by-upstream"
    page = post(admin, "/admin/patch-source/check")
    error = page.html.select_one(".poll-error").get_text(strip=True)
    assert error == f"The source refused the login (HTTP 401 at {upstream.url}/patchsets.json): check the login and password."
    assert page.html.select_one(".poll-state .pill-bad").get_text(strip=True) == "failed"
    health = admin.get("/admin/health", status=503).json
    check = next(c for c in health["checks"] if c["name"] == "patch_source")
    assert not check["ok"] and "HTTP 401" in check["detail"]
    anonymous = admin.__class__(admin.app, extra_environ=admin.extra_environ).get("/admin/health", status=503).json
    check = next(c for c in anonymous["checks"] if c["name"] == "patch_source")
    assert check["detail"].startswith("the last poll failed (") and "401" not in check["detail"]

    upstream.password = PASSWORD
    upstream.add(corrupt["symlink"])
    page = post(admin, "/admin/patch-source/check")
    failure = page.html.select_one(".poll-failure").get_text(" ", strip=True)
    assert failure.startswith(f"{corrupt['symlink'].name} refused (")
    assert "is a symbolic link" in failure
    row = rows(page)[corrupt["symlink"].name]
    assert row["status"] == "refused" and row["deploy"] is not None
    health = admin.get("/admin/health", status=503).json
    assert next(c for c in health["checks"] if c["name"] == "patch_source")["detail"].startswith(
        f"1 patchset(s) failed: {corrupt['symlink'].name}")

    upstream.remove(corrupt["symlink"].name)
    page = post(admin, "/admin/patch-source/check")
    assert page.html.select_one(".poll-error") is None and page.html.select_one(".poll-failure") is None
    assert admin.get("/admin/health", status=200)


def test_blocked_and_not_downloaded_statuses(ps_client, make_user, upstream, upstream_archives):
    client = ps_client(**{"patch_source.auto_download": "false"})
    make_user("alice", "Alice-Secret-1")
    login(client, "alice", "Alice-Secret-1")
    good = upstream_archives.good
    offer(upstream, good[:3])
    upstream.block(good[1].name)
    listed = rows(configure(client, upstream))
    assert [r["status"] for r in listed.values()] == ["not downloaded", "blocked upstream", "not downloaded"]
    assert listed[good[1].name]["deploy"] is None
    # the blocked one is skipped: deploying the third enables the first and the third
    assert listed[good[2].name]["deploy"].startswith(f"On feed main, enable 2 patchsets: {good[0].name}, {good[2].name}.")
    page = post(client, "/admin/patch-source/deploy", patchset=good[1].name, feed="main")
    assert f"{good[1].name} is blocked upstream and cannot be deployed." in page.text


def test_changelog(admin, upstream, upstream_archives):
    archive = upstream_archives.good[2]
    offer(upstream, [archive])
    page = configure(admin, upstream)
    link = page.html.select_one(f'tr[data-patchset="{archive.name}"] a.changelog-link')
    assert link.get_text() == "[changelog]"
    page = admin.get(link["href"])
    assert page.html.select_one("h1").get_text(" ", strip=True) == f"Changelog of {archive.name}"
    assert page.html.select_one("pre.changelog-text").get_text() == archive.member("changelog").decode()
    admin.get("/admin/patch-source/K20990101_01/changelog", status=404)


def test_readonly_sees_everything_and_no_buttons(ps_client, make_user, upstream, upstream_archives):
    client = ps_client()
    make_user("alice", "Alice-Secret-1")
    make_user("rita", "Rita-Secret-1", readonly=True)
    login(client, "alice", "Alice-Secret-1")
    offer(upstream, upstream_archives.good[:2])
    configure(client, upstream)
    client.reset()
    login(client, "rita", "Rita-Secret-1")
    page = client.get("/admin/patch-source/")
    assert len(rows(page)) == 2 and page.html.select("form.deploy-form, form.rollback-form, #check-now") == []
    settings = client.get("/admin/patch-source/settings")
    assert settings.html.select_one("fieldset").has_attr("disabled") and PASSWORD not in settings.text
    token = csrf_token(client)
    for url in ("/admin/patch-source/deploy", "/admin/patch-source/check", "/admin/patch-source/settings"):
        assert "read-only" in client.post(url, {"csrf_token": token, "patchset": upstream_archives.good[0].name},
                                          status=403).text


def test_unknown_feed_and_patchset(admin):
    page = admin.get("/admin/patch-source/?feed=nope")
    assert "There is no feed named 'nope': showing main." in page.text
    page = post(admin, "/admin/patch-source/deploy", patchset="K20990101_01", feed="main")
    assert "There is no patchset named 'K20990101_01'." in page.text
    page = post(admin, "/admin/patch-source/check")
    assert page.request.url.endswith("/admin/patch-source/settings")
    assert "Set the patch source's access info first." in page.text
