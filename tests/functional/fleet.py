"""Helpers for console tests that need keys and servers (built through the real services)."""
from __future__ import annotations

from datetime import timedelta

from eportal_core.models import Feed, Server
from eportal_core.services import keys
from eportal_core.testing import factories

KERNEL_ID = "0123456789abcdef0123456789abcdef01234567"


def add_feed(db, name: str) -> Feed:
    return factories.make_feed(db, name)


def add_server(db, key: str, hostname: str = "", ip: str = "", *, checkin_ago: timedelta | None = None,
               **info) -> Server:
    """Register like an agent would (the harness's ``factories.make_server``), then move its last check-in into the past."""
    return factories.make_server(db, key, hostname=hostname, ip=ip, checkin_ago=checkin_ago or timedelta(0), **info)


def add_orphan(db, hostname: str = "", ip: str = "", *, checkin_ago: timedelta | None = None, **info) -> Server:
    """A server whose key is gone (key_id NULL), as the all-servers page must still show it."""
    keys.create_key(db, "orphanage")
    server = add_server(db, "orphanage", hostname, ip, checkin_ago=checkin_ago, **info)
    server.key_id = None
    db.flush()
    assert keys.delete_key(db, "orphanage", actor="test") == 0
    return server


def server_ids(page) -> list[str]:
    """The server ids listed on a server list page, in order (from the row links)."""
    return [a["href"].rsplit("/", 1)[1] for a in page.html.select("table.server-table a.server-link")]


def hostnames(page) -> list[str]:
    return [a.get_text(strip=True) for a in page.html.select("table.server-table a.server-link")]
