"""Helpers the patch source tests import (a unique module name: the suite has several tests/ folders)."""
from __future__ import annotations

from pathlib import Path

from eportal_core.api import AccessInfo, make_source

# agents over real HTTP (protocol.md §2) come from the shared harness; the tests import them from here
from eportal_core.testing.live import agent_get, register_agent  # noqa: F401


def offer(upstream, archives) -> None:
    """Put ``archives`` into the upstream's index, in the order given."""
    for archive in archives:
        upstream.add(archive)


def http_access(upstream, **kw) -> AccessInfo:
    return AccessInfo("http", kw.get("url", upstream.url), "", kw.get("login", upstream.login),
                      kw.get("password", upstream.password))


def http_source(settings, pm, upstream, **kw):
    return make_source(pm, settings, http_access(upstream, **kw))


def data_dir(settings) -> Path:
    return Path(settings["eportal.data_dir"])


def downloads(settings) -> Path:
    return data_dir(settings) / "patches" / ".downloads"

