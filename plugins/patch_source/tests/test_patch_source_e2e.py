"""End to end, on SQLite and PostgreSQL: a real ``eportal serve``, the test upstream over real HTTP,
Chromium. The admin sets the access info in the console (the source is checked in the background
while the page refreshes itself), clicks Check now, deploys the 3rd of 5 patchsets to main through
the confirmation dialog; agents registered over HTTP read latest.v2 and download kpatch.bin (the
archive's bytes); rolling back the 2nd shows them the 1st's level. Screenshots go to
``tmp_path/screenshots`` (run with ``-s`` to see their paths)."""
from __future__ import annotations

import pytest
from patch_source_helpers import agent_get, offer, register_agent
from playwright.sync_api import expect

from eportal_core.testing.browser import Shots, console_errors, log_in

pytestmark = pytest.mark.e2e


def answer_dialog(page, button: str) -> str:
    modal = page.locator("dialog.confirm-dialog[open]")
    expect(modal).to_be_visible()
    question = modal.locator("#confirm-message").inner_text()
    modal.get_by_role("button", name=button).click()
    expect(modal).to_have_count(0)
    return question


def task_done(page) -> None:
    """The background task is over: the page stopped refreshing itself (a ``<meta>`` refresh every
    2 s) and its last reload has run eportal.js (deferred), which the deploy dialogs need."""
    expect(page.locator(".patch-task")).to_have_count(0, timeout=30_000)
    page.wait_for_load_state()


def statuses(page) -> list[str]:
    return page.locator("table.patchset-table .patchset-status").all_inner_texts()


def agents_see(server, agent, archives, enabled: int) -> None:
    """latest.v2 and kpatch.bin as the first ``enabled`` patchsets dictate, for every kernel."""
    for kernel_id in archives.kernel_ids:
        level = archives.latest(enabled, kernel_id)
        status, body = agent_get(server, f"/{kernel_id}/latest.v2", agent)
        if level is None:
            assert status == 404, (kernel_id, status, body)
            continue
        assert (status, body.decode()) == (200, str(level)), kernel_id
        status, body = agent_get(server, f"/{kernel_id}/{level}/kpatch.bin", agent)
        assert status == 200 and body == archives.provider(enabled, kernel_id, level).payload(kernel_id)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_configure_check_deploy_and_roll_back_in_a_browser(backend, start_ps_server, upstream, patch_archives,
                                                           upstream_archives, page, tmp_path):
    server = start_ps_server(backend)
    shot = Shots(page, tmp_path / "screenshots")
    names = [a.name for a in patch_archives]
    offer(upstream, patch_archives)

    log_in(page, server)
    page.get_by_role("link", name="Patch Source").click()
    expect(page.locator("h1")).to_have_text("Patch Source")
    expect(page.locator(".empty-title").first).to_have_text("Set up the patch source")
    shot("not-configured")

    # --- the access info --------------------------------------------------------------------
    page.get_by_role("link", name="Settings").first.click()
    page.check("input[name=type][value=http]")
    page.fill("#url", upstream.url)
    page.fill("#login", upstream.login)
    page.fill("#password", upstream.password)
    shot("settings")
    page.get_by_role("button", name="Save").click()
    # the first check runs in the background; the page refreshes itself until it is done
    expect(page.locator("table.patchset-table tbody tr")).to_have_count(5, timeout=30_000)
    task_done(page)
    assert statuses(page) == ["downloaded"] * 5
    shot("downloaded")
    page.goto(server.url + "/admin/patch-source/settings")
    assert page.input_value("#password") == "" and upstream.password not in page.content()
    expect(page.locator("#password-hint")).to_have_text("A password is stored. Leave this empty to keep it.")
    page.get_by_role("link", name="Patch Source").first.click()

    # --- Check now ----------------------------------------------------------------------------
    before = len(upstream.hits)
    page.get_by_role("button", name="Check now").click()
    expect(page.locator(".flashes .flash-info")).to_contain_text("Checking the patch source.")
    task_done(page)  # refreshed until done
    assert [h.path.rsplit("/", 1)[1] for h in upstream.hits[before:]] == ["patchsets.json"]  # nothing new
    expect(page.locator(".poll-state .pill-ok")).to_have_text("ok")

    # --- deploy the 3rd of 5 to main through the dialog ------------------------------------------
    third = page.locator(f'tr[data-patchset="{names[2]}"]')
    third.get_by_role("button", name="Deploy this patch, and all before it").click()
    shot("deploy-dialog")
    question = answer_dialog(page, "Deploy")
    assert question == f"On feed main, enable 3 patchsets: {', '.join(names[:3])}."
    expect(page.locator(".flashes .flash-ok")).to_contain_text(f"Enabled on main: {', '.join(names[:3])}.")
    assert statuses(page) == ["enabled on main"] * 3 + ["downloaded"] * 2
    shot("deployed")

    # --- agents ------------------------------------------------------------------------------
    server.run_cli("kc.eportal", "key", "-a", "e2e-fleet")
    agents = [register_agent(server, "e2e-fleet", f"web-{i}") for i in range(3)]
    for agent in agents:
        agents_see(server, agent, patch_archives, 3)

    # --- roll back the 2nd: agents see the 1st's level ------------------------------------------
    second = page.locator(f'tr[data-patchset="{names[1]}"]')
    second.get_by_role("button", name="Roll back this patch, and all after it").click()
    shot("rollback-dialog")
    question = answer_dialog(page, "Roll back")
    assert question == (f"On feed main, disable 2 patchsets: {names[1]}, {names[2]}. "
                        f"Servers on main go back to the patches of {names[0]}.")
    expect(page.locator(".flashes .flash-ok")).to_contain_text(f"Disabled on main: {names[1]}, {names[2]}.")
    assert statuses(page) == ["enabled on main", "disabled on main", "disabled on main", "downloaded", "downloaded"]
    shot("rolled-back")
    for agent in agents:
        agents_see(server, agent, patch_archives, 1)

    # --- the changelog -------------------------------------------------------------------------
    page.locator(f'tr[data-patchset="{names[0]}"] a.changelog-link').click()
    expect(page.locator("pre.changelog-text")).to_have_text(patch_archives[0].member("changelog").decode())
    shot("changelog")

    # --- a corrupted archive upstream: Check now shows the refusal ------------------------------
    bad = upstream_archives.corrupt["truncated"]
    upstream.add(bad)
    page.get_by_role("link", name="Patch Source").first.click()
    page.get_by_role("button", name="Check now").click()
    task_done(page)
    expect(page.locator(".poll-failure")).to_contain_text(f"{bad.name} refused")
    expect(page.locator(".poll-failure")).to_contain_text("the archive is truncated or corrupt")
    expect(page.locator(f'tr[data-patchset="{bad.name}"] .patchset-status')).to_have_text("refused")
    assert not (server.data_dir / "patches" / bad.name).exists()
    shot("refused")

    # a phone-sized look at the list
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(server.url + "/admin/patch-source/")
    shot("phone")
    assert console_errors(page) == []
