"""A real ``eportal serve`` over plain HTTP (urllib only, no browser): health, headers, redirects,
and a clean stop on SIGTERM that hands the scheduler lease back."""
from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.e2e


def test_health_reports_database_and_scheduler_leader(live_server):
    status, headers, body = live_server.get("/admin/health")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert headers["Cache-Control"] == "no-store"
    data = json.loads(body)
    assert data["status"] == "ok"
    checks = {c["name"]: c for c in data["checks"]}
    assert checks["database"]["ok"] is True
    assert checks["database"]["detail"].startswith("sqlite")
    assert checks["scheduler"] == {"name": "scheduler", "ok": True, "detail": "leader"}
    assert data["scheduler"]["running"] is True
    assert data["scheduler"]["leader"] is True


def test_security_headers_on_the_login_page(live_server):
    status, headers, body = live_server.get("/admin/login")
    assert status == 200
    assert b'name="csrf_token"' in body
    csp = headers["Content-Security-Policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'",
                      "base-uri 'none'", "form-action 'self'"):
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in headers  # plain HTTP
    # bundled assets and JSON carry the protective headers too
    for path in ("/admin/static/css/eportal.css", "/admin/static/js/eportal.js", "/admin/health"):
        status, headers, _ = live_server.get(path)
        assert status == 200, path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["X-Frame-Options"] == "DENY", path


@pytest.mark.parametrize("path", ["/admin", "/admin/", "/admin/users/"])
def test_console_pages_redirect_to_login(live_server, path):
    status, headers, _ = live_server.get(path)
    assert status in (302, 303)
    location = urlsplit(headers["Location"])
    assert location.path == "/admin/login"
    assert location.query.startswith("next=")
    assert "Set-Cookie" not in headers  # no session for an anonymous visitor


def test_sigterm_stops_the_server_and_releases_the_scheduler_lease(live_server):
    """Runs last in this module: it stops the module's server."""
    assert live_server.running
    started = time.monotonic()
    code = live_server.stop(timeout=10)
    took = time.monotonic() - started
    assert took < 10, f"eportal serve needed {took:.1f} s to stop"
    assert code == 0, live_server.log_tail()
    assert "eportal stopped" in live_server.log_tail()
    with pytest.raises(OSError):
        live_server.get("/admin/health", timeout=1)
    db = sqlite3.connect(live_server.data_dir / "eportal.sqlite")
    try:
        rows = db.execute("SELECT name, holder, expires FROM scheduler_lease").fetchall()
    finally:
        db.close()
    assert len(rows) == 1, rows
    _, holder, expires = rows[0]
    assert holder  # it was held by the server
    now = datetime.now(UTC).replace(tzinfo=None)
    assert datetime.fromisoformat(expires) <= now, f"lease still held until {expires} (now {now})"
    print(f"serve stopped in {took:.2f} s; lease of {holder} expired at {expires}")
