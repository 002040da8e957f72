"""``eportal.plugins.disabled = feeds``: the plugin's pages, API routes, navigation entry, API
documentation, job, commands and flag are gone, and the core still works (``main`` is there, keys
are created on it, the key form still offers the feeds that exist)."""
from __future__ import annotations

from click.testing import CliRunner
from eportal_feeds import JOB_ID
from feeds_testing import add_feed

from eportal_core import testing
from eportal_core.api import CliEnv
from eportal_core.testing import login
from eportal_core.testing.core import SiteScheduler, build_eportal_cli, build_kc_cli, load_settings

OFF = {"eportal.plugins.disabled": "feeds"}
PAGES = ("/admin/feeds/", "/admin/feeds/add", "/admin/feeds/main/edit")
API = ("/admin/api/feeds/", "/admin/api/patchsets/")


def nav(page) -> list[str]:
    return [a.get_text(strip=True) for a in page.html.select('nav[aria-label="Main"] a')]


def test_enabled_and_disabled_side_by_side(make_app_client, make_user, dbsession):
    make_user("alice", "Alice-Secret-1")
    add_feed(dbsession, "beta")
    dbsession.commit()
    on, off = make_app_client(), make_app_client(**OFF)
    for client in (on, off):
        login(client, "alice", "Alice-Secret-1")
    assert "Feeds" in nav(on.get("/admin/"))
    for path in PAGES:
        on.get(path, status=200)
    for path in API:
        assert "result" in on.get(path, status=200).json  # the console session may read the API
    home = off.get("/admin/")
    assert "Feeds" not in nav(home) and "Keys" in nav(home)
    # the core's entries of the Settings menu stay
    assert [a.get_text(strip=True) for a in home.html.select("#nav-settings a")] == ["Users", "API tokens"]
    for path in PAGES:
        off.get(path, status=404)
    for path in API:
        off.get(path, status=404)
    off.delete("/admin/api/feeds/beta", status=404)
    off.post("/admin/api/patchsets/manage", {"patchset": "x", "action": "enable"}, status=404)
    doc = off.get("/admin/api/openapi.json").json
    assert not [p for p in doc["paths"] if p.startswith(("/admin/api/feeds", "/admin/api/patchsets"))]
    assert "Feed" not in doc["components"]["schemas"]
    assert "/admin/api/feeds/" in on.get("/admin/api/openapi.json").json["paths"]
    # the core goes on: a key on main, and the key form still offers the feeds that exist
    form = off.get("/admin/keys/add").forms[1]
    assert [o[0] for o in form["feed"].options] == ["main", "beta"]
    form["key"] = "plain-key"
    form.submit(name="action", value="save", status=303)
    assert "plain-key" in off.get("/admin/").text


def test_no_job_no_command_no_flag(tmp_path):
    def env(**raw) -> CliEnv:
        e = CliEnv()
        e.__dict__["_loaded"] = load_settings(testing.make_test_settings(tmp_path, f"sqlite:///{tmp_path}/x.sqlite", **raw))
        return e
    runner = CliRunner()
    on, off = env(), env(**OFF)
    assert JOB_ID in {j.id for j in SiteScheduler(on.settings, None, on.pm).collect_jobs()}
    assert JOB_ID not in {j.id for j in SiteScheduler(off.settings, None, off.pm).collect_jobs()}
    for build in (build_eportal_cli, build_kc_cli):
        assert "feed" in build(on).commands
        assert "feed" not in build(off).commands
        assert runner.invoke(build(off), ["feed"]).exit_code == 2  # no such command
    assert "--auto-update" in runner.invoke(build_kc_cli(on), ["--help"]).output
    assert "--auto-update" not in runner.invoke(build_kc_cli(off), ["--help"]).output
    # a leftover plugin setting is not an error once the plugin is off (its namespace is not owned)
    assert load_settings(testing.make_test_settings(tmp_path, f"sqlite:///{tmp_path}/x.sqlite",
                                                    **{**OFF, "feeds.auto_update_seconds": "5"}))
