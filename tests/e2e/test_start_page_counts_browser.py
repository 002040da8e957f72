"""The start page at fleet scale in a real Chromium against a real ``eportal serve``: with
``eportal.start_page.live_count_under`` lowered to 3, agents registered over HTTP are counted from
the background refresh (``eportal.start_page.refresh_seconds`` = 5), and the page says when."""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from eportal_core.testing.live import Shots, console_errors, log_in, register_agent

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_counts_come_from_the_refresh_and_say_when(start_live_server, page, tmp_path, backend):
    server = start_live_server(backend, **{"eportal.start_page.live_count_under": "3",
                                           "eportal.start_page.refresh_seconds": "5"})
    server.run_cli("kc.eportal", "key", "-a", "--note", "fleet", "fleetkey1")
    for n in range(3):
        register_agent(server, "fleetkey1", f"web-{n:02d}")
    shots = Shots(page, tmp_path / "screenshots")
    log_in(page, server)
    page.goto(f"{server.url}/admin/")
    total = page.locator("#total-servers")
    expect(total).to_have_text("3")                      # counted for this view: none counted before
    register_agent(server, "fleetkey1", "web-03")
    page.reload()
    expect(total).to_have_text("3")                      # the last count
    note = page.locator(".counts-note")
    expect(note).to_have_text(re.compile(r"Server counts as of \d\d:\d\d:\d\d UTC, refreshed every 5 s"))
    shots("start-page-fleet-scale")
    deadline = time.monotonic() + 30
    while total.inner_text() != "4" and time.monotonic() < deadline:
        time.sleep(1)
        page.reload()
    expect(total).to_have_text("4")                      # the background refresh caught up
    assert console_errors(page) == []
