"""Feeds end to end, on SQLite and PostgreSQL: a real ``eportal serve``, Chromium, agents over HTTP.

- Auto feeds: the admin creates ``fast`` (deploy after 0) and ``slow`` (deploy after 10 hours) on
  Settings → Feeds and a key on each; five patchsets arrive without being deployed; after
  ``kc.eportal --auto-update`` agents on ``fast`` get the newest level and its kpatch.bin, agents
  on ``slow`` nothing. 9 h 59 min after arrival ``slow`` still gets nothing; at 10 h it gets it all.
- A key moved to another feed: agents of a key on ``beta`` (patchset 1 enabled) see patchset 3's
  levels once the admin moves the key to ``main`` (1..3 enabled) in the key form, without
  registering again, and patchset 1's levels again once it is moved back.

The scheduled auto-update job is kept from running during a test (``feeds.auto_update_seconds``
at its maximum, and its first run comes only after one interval): the test runs the rules itself
with ``kc.eportal --auto-update``, so what each step sees is decided by the step. Screenshots go
to ``tmp_path/screenshots`` (run with ``-s`` to see their paths).
"""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from eportal_core.api import MAIN_FEED, CliEnv, Feed, Patchset, deploy, import_archive, utcnow
from eportal_core.testing.browser import Shots, console_errors, log_in, nav_click
from eportal_core.testing.live import agent_get, register_agent

pytestmark = pytest.mark.e2e

#: the job's longest interval (a day): it never runs while a test does
NO_SCHEDULED_RUN = {"feeds.auto_update_seconds": "86400"}


@pytest.fixture
def cli_env():
    """``cli_env(server)``: a :class:`CliEnv` on the live server's ini (its database and data dir),
    as a command run on the portal's host would have; disposed at the end."""
    envs = []

    def make(server) -> CliEnv:
        envs.append(CliEnv(str(server.ini)))
        return envs[-1]

    yield make
    for env in envs:
        if "engine" in env.__dict__:
            env.engine.dispose()


def arrive(env: CliEnv, archives) -> None:
    """The archives arrive on the portal without being deployed: the importer ``kcare deploy
    --disabled`` and the patch source use (``Patchset.downloaded`` = now)."""
    with env.dbsession() as db:
        for archive in archives:
            import_archive(db, archive, data_dir=env.settings["eportal.data_dir"], pm=env.pm, actor="e2e")


def arrived_ago(env: CliEnv, archives, ago: timedelta) -> None:
    """Move the clock for a live server: the auto-update rule reads a patchset's arrival time
    (``patchsets.downloaded``) and the database's rows, never a timer, so saying the patchsets
    arrived ``ago`` before now is, to the running service, the same as that much time passing."""
    names = [a.name for a in archives]
    with env.dbsession() as db:
        rows = db.scalars(select(Patchset).where(Patchset.name.in_(names))).all()
        assert sorted(p.name for p in rows) == sorted(names)
        now = utcnow()
        for patchset in rows:
            patchset.downloaded = now - ago


def auto_update(server) -> list[str]:
    """``kc.eportal --auto-update`` against the server's ini: one line per auto feed."""
    return server.run_cli("kc.eportal", "--auto-update").stdout.splitlines()


def agent_sees(server, agent: str, archives, enabled: int) -> None:
    """latest.v2 and kpatch.bin of every kernel as the first ``enabled`` patchsets dictate (0: none);
    a level past them is not served."""
    for kernel_id in archives.kernel_ids:
        level = archives.latest(enabled, kernel_id)
        status, body = agent_get(server, f"/{kernel_id}/latest.v2", agent)
        if level is None:
            assert status == 404, (agent, kernel_id, status, body)
        else:
            assert (status, body.decode()) == (200, str(level)), (agent, kernel_id)
            status, body = agent_get(server, f"/{kernel_id}/{level}/kpatch.bin", agent)
            assert status == 200 and body == archives.provider(enabled, kernel_id, level).payload(kernel_id), \
                (agent, kernel_id, level, status)
        newest = archives.latest(len(archives), kernel_id)
        if newest is not None and newest != level:
            assert agent_get(server, f"/{kernel_id}/{newest}/kpatch.bin", agent)[0] == 404, (agent, kernel_id)


def feed_row(page, name: str):
    return page.locator(f'#feeds tbody tr[data-feed="{name}"]')


def key_row(page, key: str):
    link = page.locator("a.key-link", has_text=re.compile(f"^{re.escape(key)}$"))
    return page.locator("table.key-table tbody tr").filter(has=link)


def create_feed(page, name: str, deploy_after: str) -> None:
    """Settings → Feeds → Create feed, with auto update on."""
    page.get_by_role("link", name="Create feed").click()
    expect(page.locator("h1")).to_have_text("Create feed")
    page.fill("#name", name)
    page.check("#auto")
    page.fill("#deploy_after", deploy_after)
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flashes .flash-ok")).to_contain_text(f"Feed '{name}' created.")
    expect(page.locator("h1")).to_have_text("Feeds")


def set_key_feed(page, server, key: str, feed: str) -> None:
    """Key Inventory → Edit → Feed → Save."""
    page.goto(server.url + "/admin/")
    key_row(page, key).get_by_role("link", name=f"Edit key {key}").click()
    expect(page.locator("h1")).to_have_text(f"Edit key {key}")
    page.select_option("#feed", feed)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".flashes .flash-ok")).to_contain_text(f"Key '{key}' saved.")
    expect(key_row(page, key).locator("td").nth(3)).to_have_text(feed)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_auto_feeds_deploy_after_0_and_10_hours(backend, start_live_server, cli_env, patch_archives, page, tmp_path):
    server = start_live_server(backend, **NO_SCHEDULED_RUN)
    env = cli_env(server)
    shot = Shots(page, tmp_path / "screenshots")
    names = [a.name for a in patch_archives]

    # --- two auto feeds in the console --------------------------------------------------------
    log_in(page, server)
    nav_click(page, "Feeds", group="Settings")
    expect(page.locator("h1")).to_have_text("Feeds")
    create_feed(page, "fast", "0")
    create_feed(page, "slow", "10")
    for name, delay in (("fast", "at once"), ("slow", "after 10 hours")):
        expect(feed_row(page, name).locator(".auto")).to_have_text("on")
        expect(feed_row(page, name).locator(".deploy-after")).to_have_text(delay)
        expect(feed_row(page, name).locator(".enabled .count")).to_have_text("0")
    expect(feed_row(page, MAIN_FEED).locator(".auto")).to_have_text("off")
    shot("feeds-created")

    # --- a key on each: fast through the key form, slow through the CLI -------------------------
    page.goto(server.url + "/admin/")
    page.get_by_role("link", name="Create key").first.click()
    expect(page.locator("#feed option")).to_have_text([MAIN_FEED, "fast", "slow"])
    expect(page.locator("#feed")).to_have_value(MAIN_FEED)
    page.fill("#key", "fast-key")
    page.select_option("#feed", "fast")
    shot("key-form-fast")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".flashes .flash-ok")).to_contain_text("Key 'fast-key' created.")
    server.run_cli("kc.eportal", "key", "-a", "slow-key", "--feed", "slow")
    page.reload()
    expect(key_row(page, "fast-key").locator("td").nth(3)).to_have_text("fast")
    expect(key_row(page, "slow-key").locator("td").nth(3)).to_have_text("slow")

    fast = [register_agent(server, "fast-key", f"fast-{i}") for i in range(2)]
    slow = [register_agent(server, "slow-key", f"slow-{i}") for i in range(2)]

    # --- five patchsets arrive, none deployed: nobody gets anything yet --------------------------
    arrive(env, patch_archives)
    for agent in fast + slow:
        agent_sees(server, agent, patch_archives, 0)

    # --- the rules run: fast gets all five at once, slow nothing ---------------------------------
    assert auto_update(server) == [f"fast: enabled {', '.join(names)}", "slow: nothing due (deploy after 10h)"]
    for agent in fast:
        agent_sees(server, agent, patch_archives, len(patch_archives))
    for agent in slow:
        agent_sees(server, agent, patch_archives, 0)
    nav_click(page, "Feeds", group="Settings")
    expect(feed_row(page, "fast").locator(".enabled .count")).to_have_text("5")
    expect(feed_row(page, "fast").locator(".latest")).to_have_text(names[-1])
    expect(feed_row(page, "slow").locator(".enabled .count")).to_have_text("0")
    expect(feed_row(page, "fast").locator(".keys")).to_have_text("1")
    shot("fast-deployed")

    # --- 9 h 59 min after arrival: still not due on slow -----------------------------------------
    arrived_ago(env, patch_archives, timedelta(hours=9, minutes=59))
    assert auto_update(server) == ["fast: nothing due (deploy after 0h)", "slow: nothing due (deploy after 10h)"]
    for agent in slow:
        agent_sees(server, agent, patch_archives, 0)

    # --- 10 hours after arrival: slow gets the newest level too ----------------------------------
    arrived_ago(env, patch_archives, timedelta(hours=10))
    assert auto_update(server) == ["fast: nothing due (deploy after 0h)", f"slow: enabled {', '.join(names)}"]
    for agent in slow + fast:
        agent_sees(server, agent, patch_archives, len(patch_archives))
    page.reload()
    expect(feed_row(page, "slow").locator(".enabled .count")).to_have_text("5")
    expect(feed_row(page, "slow").locator(".latest")).to_have_text(names[-1])
    shot("slow-deployed")
    assert console_errors(page) == []
    assert "Traceback" not in server.log_tail(400)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_key_moved_to_another_feed_changes_what_its_servers_see(backend, start_live_server, cli_env,
                                                                  patch_archives, page, tmp_path):
    server = start_live_server(backend, **NO_SCHEDULED_RUN)
    env = cli_env(server)
    shot = Shots(page, tmp_path / "screenshots")
    archives = patch_archives

    # main has patchsets 1..3 enabled, beta only 1; a key on beta with two servers
    server.run_cli("kc.eportal", "feed", "-a", "beta")
    arrive(env, archives[:3])
    with env.dbsession() as db:
        feeds = {f.name: f for f in db.scalars(select(Feed))}
        third = db.scalar(select(Patchset).where(Patchset.name == archives[2].name))
        first = db.scalar(select(Patchset).where(Patchset.name == archives[0].name))
        deploy.enable_upto(db, feeds[MAIN_FEED], third, pm=env.pm, actor="e2e")
        deploy.enable_upto(db, feeds["beta"], first, pm=env.pm, actor="e2e")
    server.run_cli("kc.eportal", "key", "-a", "beta-key", "--feed", "beta")
    agents = [register_agent(server, "beta-key", f"beta-{i}") for i in range(2)]
    for agent in agents:
        agent_sees(server, agent, archives, 1)

    log_in(page, server)
    expect(key_row(page, "beta-key").locator("td").nth(3)).to_have_text("beta")
    expect(key_row(page, "beta-key").locator("td").nth(4)).to_have_text("2")

    # --- beta -> main: the same servers (no new registration) now get patchset 3's levels --------
    key_row(page, "beta-key").get_by_role("link", name="Edit key beta-key").click()
    expect(page.locator("#feed")).to_have_value("beta")
    page.select_option("#feed", MAIN_FEED)
    shot("key-form-to-main")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".flashes .flash-ok")).to_contain_text("Key 'beta-key' saved.")
    expect(key_row(page, "beta-key").locator("td").nth(3)).to_have_text(MAIN_FEED)
    expect(key_row(page, "beta-key").locator("td").nth(4)).to_have_text("2")
    summary = page.locator("table.summary-table tbody tr")
    expect(summary.filter(has=page.locator("th", has_text=MAIN_FEED)).locator("td").nth(1)).to_have_text("2")
    beta_row = summary.filter(has=page.locator("th", has_text="beta"))
    expect(beta_row.locator("td").nth(1)).to_have_text("0")
    # the row header is striped like the rest of its (even) row
    background = "e => getComputedStyle(e).backgroundColor"
    assert beta_row.locator("th").evaluate(background) == beta_row.locator("td").first.evaluate(background)
    shot("key-on-main")
    for agent in agents:
        agent_sees(server, agent, archives, 3)
    nav_click(page, "Feeds", group="Settings")
    expect(feed_row(page, MAIN_FEED).locator(".keys")).to_have_text("1")
    expect(feed_row(page, "beta").locator(".keys")).to_have_text("0")
    shot("feeds-after-move")

    # --- and back: patchset 1's levels again ------------------------------------------------------
    set_key_feed(page, server, "beta-key", "beta")
    for agent in agents:
        agent_sees(server, agent, archives, 1)
    out = server.run_cli("kc.eportal", "key", "beta-key").stdout
    assert re.search(r"^beta-key\s+beta\s+unlimited\s+2\b", out, re.M), out
    assert console_errors(page) == []
    assert "Traceback" not in server.log_tail(400)
