"""The ``http`` source over HTTPS against the test upstream speaking real TLS (a throw-away CA made
with ``openssl``), directly and through a real CONNECT proxy, on SQLite and PostgreSQL: with
``patch_source.ca_file`` it downloads and imports; an untrusted certificate (no ca_file, the wrong
CA) or a host name the certificate does not name is a recorded, one-line poll failure; a ca_file
that cannot be read stops start-up, or the poll when it went missing later; through the proxy the
upstream's login travels inside TLS."""
from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from eportal_patch_source import access as access_store
from eportal_patch_source import service
from eportal_patch_source.cli import show
from eportal_patch_source.state import load_state
from eportal_patch_source.testing_tls import ConnectProxy, make_ca
from patch_source_helpers import data_dir, http_access, offer
from sqlalchemy import select

from eportal_core.api import Patchset, SettingsError, SourceError, make_source
from eportal_core.testing import csrf_token, login


def settled(read, timeout: float = 5.0, quiet: float = 0.3):
    """``read()`` once it is non-zero and has not changed for ``quiet`` seconds (or at ``timeout``)."""
    deadline = time.monotonic() + timeout
    value, since = read(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
        elif value and time.monotonic() - since >= quiet:
            break
    return value


@pytest.fixture
def tls_ctx(ps_settings, test_sessions):
    """``tls_ctx(**settings)`` -> a service.Context with those ini settings, in the test's transaction."""
    def build(**overrides):
        settings, pm = ps_settings(**overrides)
        return service.Context(sessions=test_sessions, settings=settings, pm=pm, actor="test")
    return build


@pytest.fixture
def no_proxy_bypass(monkeypatch):
    """The autouse fixture keeps localhost away from proxies; a proxy test wants it through one."""
    for name in ("no_proxy", "NO_PROXY", "https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)


def configure(ctx, info) -> None:
    with ctx.sessions() as db:
        access_store.save(db, info, pm=ctx.pm, settings=ctx.settings, actor="test")


def downloaded(ctx) -> dict[str, bool]:
    with ctx.sessions() as db:
        return {p.name: p.downloaded is not None for p in db.scalars(select(Patchset).order_by(Patchset.name))}


def untrusted(upstream, detail: str = "unable to get local issuer certificate") -> str:
    return (f"cannot reach {upstream.url}/patchsets.json: the TLS certificate of localhost is not trusted ({detail}): "
            "set patch_source.ca_file to the PEM file of the CA that signed it")


def test_a_poll_over_https_with_the_ca_file_downloads_and_imports(tls_ctx, pki, tls_upstream, upstream_archives):
    ctx = tls_ctx(**{"patch_source.ca_file": str(pki.ca_cert)})
    good = upstream_archives.good[:2]
    offer(tls_upstream, good)
    configure(ctx, http_access(tls_upstream))
    assert tls_upstream.url.startswith("https://localhost:")
    result = service.poll(ctx)
    assert result.ok, result.summary()
    assert result.downloaded == [a.name for a in good]
    assert downloaded(ctx) == {a.name: True for a in good}
    for archive in good:
        assert (data_dir(ctx.settings) / "patches" / archive.name / "manifest.json").is_file()
    assert [h.path.rsplit("/", 1)[-1] for h in tls_upstream.hits] == ["patchsets.json"] + [f"{a.name}.tar.bz2" for a in good]
    assert all(h.authorized for h in tls_upstream.hits) and tls_upstream.tls_failures == []


def test_without_the_ca_file_the_poll_records_an_untrusted_certificate(tls_ctx, tls_upstream, upstream_archives, capsys):
    ctx = tls_ctx()  # the system's CAs: they never signed the test CA's certificate
    offer(tls_upstream, upstream_archives.good[:1])
    configure(ctx, http_access(tls_upstream))
    result = service.poll(ctx)  # never raises
    assert result.error == untrusted(tls_upstream)
    # the server thread notes the broken handshake a moment after the client gave up
    assert settled(lambda: len(tls_upstream.tls_failures)) == 1  # refused at the handshake, not retried
    assert tls_upstream.hits == []
    assert "unknown ca" in tls_upstream.tls_failures[0]
    with ctx.sessions() as db:
        assert load_state(db).error == untrusted(tls_upstream)
    assert downloaded(ctx) == {}
    show(SimpleNamespace(dbsession=ctx.sessions))  # kc.eportal patch-source --show
    out = capsys.readouterr().out
    assert f"url:       {tls_upstream.url}" in out
    assert f"(scheduler), failed: {untrusted(tls_upstream)}\n" in out


def test_the_wrong_ca_file_is_named_in_the_failure(tls_ctx, tls_upstream, tmp_path):
    other_ca, _ = make_ca(tmp_path / "other-ca", "some other CA")
    ctx = tls_ctx(**{"patch_source.ca_file": str(other_ca)})
    configure(ctx, http_access(tls_upstream))
    result = service.poll(ctx)
    assert result.error == (f"cannot reach {tls_upstream.url}/patchsets.json: the TLS certificate of localhost is not "
                            f"signed by the CA in patch_source.ca_file {other_ca} (unable to get local issuer "
                            "certificate): is that the CA of the source's certificate?")
    assert tls_upstream.hits == []


def test_a_host_name_the_certificate_does_not_name_is_refused(tls_ctx, pki, tls_upstream):
    ctx = tls_ctx(**{"patch_source.ca_file": str(pki.ca_cert)})
    url = tls_upstream.url.replace("://localhost:", "://127.0.0.1:")  # the certificate names localhost only
    configure(ctx, http_access(tls_upstream, url=url))
    result = service.poll(ctx)
    assert result.error == (f"cannot reach {url}/patchsets.json: the TLS certificate of 127.0.0.1 is not valid for "
                            "that name (IP address mismatch, certificate is not valid for '127.0.0.1'): put a host "
                            "name the certificate names in the URL")
    assert tls_upstream.hits == []


def test_an_untrusted_certificate_shows_on_the_console_page(ps_client, make_user, tls_upstream):
    client = ps_client()
    make_user("alice", "Alice-Secret-1")
    login(client, "alice", "Alice-Secret-1")
    form = client.get("/admin/patch-source/settings").forms["patch-source-form"]
    form["type"].value = "http"
    form["url"], form["login"], form["password"] = tls_upstream.url, tls_upstream.login, tls_upstream.password
    page = form.submit(status=303).follow()  # saving starts a check
    page = client.post("/admin/patch-source/check", {"csrf_token": csrf_token(client)}, status=303).follow()
    error = page.html.select_one(".poll-error").get_text(strip=True)
    assert error == untrusted(tls_upstream)[0].upper() + untrusted(tls_upstream)[1:] + "."


# --- the ca_file setting -------------------------------------------------------------------------

@pytest.mark.parametrize("make, expected", [
    (lambda d: d / "missing.pem", "a readable PEM file of CA certificates ({path} does not exist)"),
    (lambda d: d, "a PEM file of CA certificates ({path} is a folder)"),
    (lambda d: (d / "notes.txt", (d / "notes.txt").write_text("not a certificate"))[0],
     "a readable PEM file of CA certificates ({path} holds no PEM certificate OpenSSL can read "
     "(NO_CERTIFICATE_OR_CRL_FOUND))"),
    (lambda d: "ca.pem", "an absolute path to a PEM file of CA certificates, not the relative 'ca.pem'"),
])
def test_a_ca_file_that_cannot_be_used_stops_start_up(ps_settings, tmp_path, make, expected):
    path = make(tmp_path)
    with pytest.raises(SettingsError) as caught:
        ps_settings(**{"patch_source.ca_file": str(path)})
    assert str(caught.value) == (f"setting patch_source.ca_file = {str(path)!r} is not valid: expected "
                                 + expected.format(path=path))


def test_kc_eportal_names_an_unusable_ca_file_in_one_line(tmp_path):
    dev_ini = Path(__file__).resolve().parents[3] / "development.ini"
    ini = tmp_path / "eportal.ini"
    missing = tmp_path / "missing-ca.pem"
    ini.write_text(dev_ini.read_text().replace("[app:main]\n", f"[app:main]\npatch_source.ca_file = {missing}\n", 1))
    env = {**os.environ, "EPORTAL_INI": str(ini), "EPORTAL_DATA_DIR": str(tmp_path / "data")}
    for args in (["patch-source", "--show"], ["--get-latest"]):
        done = subprocess.run([str(Path(sys.executable).parent / "kc.eportal"), *args], env=env, capture_output=True,
                              text=True, timeout=60)
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr == (f"error: setting patch_source.ca_file = '{missing}' is not valid: expected a readable "
                               f"PEM file of CA certificates ({missing} does not exist)\n")


def test_a_ca_file_removed_after_start_up_is_a_recorded_poll_failure(tls_ctx, pki, tls_upstream, tmp_path):
    ca = tmp_path / "ca.pem"
    shutil.copy(pki.ca_cert, ca)
    ctx = tls_ctx(**{"patch_source.ca_file": str(ca)})
    configure(ctx, http_access(tls_upstream))
    ca.unlink()
    result = service.poll(ctx)
    assert result.error == f"cannot use patch_source.ca_file: {ca} does not exist"
    assert tls_upstream.hits == [] and tls_upstream.tls_failures == []


# --- through a proxy -----------------------------------------------------------------------------

def test_https_goes_through_the_proxy_in_a_tunnel_with_the_login_inside_tls(tls_ctx, pki, tls_upstream,
                                                                           upstream_archives, no_proxy_bypass):
    archive = upstream_archives.good[0]
    offer(tls_upstream, [archive])
    with ConnectProxy("proxy-user", "proxy-Pass-9") as proxy:
        ctx = tls_ctx(**{"patch_source.ca_file": str(pki.ca_cert), "eportal.https_proxy": proxy.url})
        configure(ctx, http_access(tls_upstream))
        result = service.poll(ctx)
        seen = proxy.seen()
    assert result.ok and result.downloaded == [archive.name], result.summary()
    target = f"localhost:{tls_upstream.port}"
    assert proxy.targets == [target, target]  # the index, then the archive
    proxy_login = "Proxy-Authorization: Basic " + base64.b64encode(b"proxy-user:proxy-Pass-9").decode()
    assert all(head.decode().startswith(f"CONNECT {target} HTTP/") and proxy_login in head.decode()
               for head in proxy.heads)
    # the upstream got origin-form requests from inside the tunnel, with its login
    assert [(h.proxied, h.authorized) for h in tls_upstream.hits] == [(False, True), (False, True)]
    assert len(seen) > archive.path.stat().st_size  # the archive did pass through the proxy
    upstream_token = base64.b64encode(f"{tls_upstream.login}:{tls_upstream.password}".encode())
    for secret in (upstream_token, tls_upstream.password.encode(), tls_upstream.login.encode(),
                   b"patchsets.json", b"/kcare/", b"GET "):
        assert secret not in seen, f"{secret!r} crossed the proxy in clear"


def test_through_the_proxy_the_certificate_is_still_checked(tls_ctx, tls_upstream, no_proxy_bypass):
    with ConnectProxy() as proxy:
        ctx = tls_ctx(**{"eportal.https_proxy": proxy.url})  # no ca_file
        configure(ctx, http_access(tls_upstream))
        assert service.poll(ctx).error == untrusted(tls_upstream)
        assert proxy.targets == [f"localhost:{tls_upstream.port}"]
    with ConnectProxy("proxy-user", "proxy-Pass-9") as proxy:
        ctx = tls_ctx(**{"eportal.https_proxy": proxy.url.replace("proxy-Pass-9", "wrong")})
        assert service.poll(ctx).error == (
            f"the proxy wants a login (HTTP 407 at {tls_upstream.url}/patchsets.json): put it in eportal.http_proxy / "
            "eportal.https_proxy as http://USER:PASSWORD@HOST:PORT")
    assert tls_upstream.hits == []


def test_an_https_proxy_for_an_https_source_is_refused_in_one_sentence(ps_settings, tls_upstream, no_proxy_bypass):
    settings, pm = ps_settings(**{"eportal.https_proxy": "https://proxy.example.com:3129"})
    with pytest.raises(SourceError) as caught:
        make_source(pm, settings, http_access(tls_upstream))
    assert str(caught.value) == ("eportal.https_proxy is an https:// proxy, which cannot carry https:// sources here: "
                                 "give the proxy's http:// address (the source's TLS then runs through it)")


def test_an_https_proxy_for_an_http_source_is_verified_with_the_ca_file(ps_settings, pki, tls_upstream,
                                                                        upstream_archives, no_proxy_bypass):
    """The TLS upstream answers proxy-form requests too: here it plays a TLS proxy (``https://``)."""
    offer(tls_upstream, upstream_archives.good[:1])
    proxy = f"https://localhost:{tls_upstream.port}"
    info = http_access(tls_upstream, url="http://patches.upstream.invalid/kcare")
    settings, pm = ps_settings(**{"eportal.http_proxy": proxy, "patch_source.ca_file": str(pki.ca_cert)})
    assert len(make_source(pm, settings, info).index().entries) == 1
    assert [(h.proxied, h.authorized) for h in tls_upstream.hits] == [(True, True)]
    settings, pm = ps_settings(**{"eportal.http_proxy": proxy})  # the proxy's certificate is checked too
    with pytest.raises(SourceError) as caught:
        make_source(pm, settings, info).index()
    assert str(caught.value) == ("cannot reach http://patches.upstream.invalid/kcare/patchsets.json: the TLS certificate "
                                 "of the proxy localhost is not trusted (unable to get local issuer certificate): set "
                                 "patch_source.ca_file to the PEM file of the CA that signed it")
