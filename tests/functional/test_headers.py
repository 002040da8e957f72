"""Security headers: CSP, nosniff, frame-ancestors / X-Frame-Options, Referrer-Policy, no-store."""
from __future__ import annotations

import pytest

from eportal_core.testing import login


def csp_directives(res) -> dict[str, str]:
    policy = res.headers.get("Content-Security-Policy")
    assert policy, f"no Content-Security-Policy on {res.request.path_qs}"
    out = {}
    for part in policy.split(";"):
        name, _, value = part.strip().partition(" ")
        if name:
            out[name] = value.strip()
    return out


def assert_html_security_headers(res):
    assert res.content_type == "text/html"
    csp = csp_directives(res)
    assert csp["frame-ancestors"] == "'none'"
    assert csp["default-src"] == "'self'"
    # no inline or eval'd script, no plugins, no <base> hijack, forms only post back here
    assert "'unsafe-inline'" not in csp.get("script-src", csp["default-src"])
    assert "'unsafe-eval'" not in csp.get("script-src", csp["default-src"])
    assert csp["object-src"] == "'none'"
    assert csp["base-uri"] == "'none'"
    assert csp["form-action"] == "'self'"
    assert res.headers["X-Content-Type-Options"] == "nosniff"
    assert res.headers["X-Frame-Options"] == "DENY"
    assert res.headers["Referrer-Policy"] in ("same-origin", "no-referrer", "strict-origin-when-cross-origin")


def assert_no_store(res):
    assert "no-store" in res.headers.get("Cache-Control", ""), f"{res.request.path_qs} may be cached"


def test_login_page_headers(testapp):
    res = testapp.get("/admin/login")
    assert_html_security_headers(res)
    assert_no_store(res)
    assert "Strict-Transport-Security" not in res.headers  # only announced over HTTPS


@pytest.mark.parametrize("path", ["/admin/", "/admin/users/", "/admin/users/add"])
def test_console_page_headers(testapp, as_admin, path):
    res = testapp.get(path)
    assert_html_security_headers(res)
    assert_no_store(res)


def test_headers_on_error_pages(testapp, as_readonly):
    forbidden = testapp.get("/admin/users/add", status=403)
    assert_html_security_headers(forbidden)
    assert_no_store(forbidden)
    missing = testapp.get("/admin/no-such-page", status=404)
    assert_html_security_headers(missing)
    csrf = testapp.post("/admin/logout", status=400)
    assert_html_security_headers(csrf)


def test_headers_on_anonymous_404_and_redirects(testapp):
    assert_html_security_headers(testapp.get("/admin/nothing-here", status=404))
    redirect = testapp.get("/admin/users/", status=302)
    assert redirect.headers["X-Content-Type-Options"] == "nosniff"
    assert redirect.headers["X-Frame-Options"] == "DENY"


def test_json_and_static_responses_get_nosniff(testapp):
    health = testapp.get("/admin/health")
    assert health.headers["X-Content-Type-Options"] == "nosniff"
    assert health.headers["X-Frame-Options"] == "DENY"
    assert "no-store" in health.headers["Cache-Control"]
    css = testapp.get("/admin/static/css/eportal.css")
    assert css.headers["X-Content-Type-Options"] == "nosniff"
    assert css.content_type == "text/css"


def test_hsts_over_https(testapp):
    res = testapp.get("/admin/login", extra_environ={"wsgi.url_scheme": "https"})
    assert res.headers["Strict-Transport-Security"].startswith("max-age=")
    assert int(res.headers["Strict-Transport-Security"].split("=")[1].split(";")[0]) >= 15552000  # 180 days
    assert_html_security_headers(res)


def test_console_page_after_login_is_not_cacheable(testapp, make_user):
    make_user("alice", "Alice-Secret-1")
    page = login(testapp, "alice", "Alice-Secret-1").follow()
    assert "alice" in page.text
    assert_no_store(page)
    assert_html_security_headers(page)
