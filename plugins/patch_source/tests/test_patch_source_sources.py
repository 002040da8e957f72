"""The source types through the hook: ``http`` against the test upstream over real HTTP (Basic auth,
proxy, Range resume, retries, checksum), ``directory`` on a folder of archives."""
from __future__ import annotations

import hashlib
import shutil

import pytest
from eportal_patch_source.directory_source import DirectorySource
from eportal_patch_source.http_source import HttpSource, proxies
from patch_source_helpers import downloads, offer
from patch_source_helpers import http_source as _http_source

from eportal_core.api import AccessInfo, ArchiveRefused, SettingsError, SourceError, make_source, source_types
from eportal_core.testing.patches import KERNEL_IDS, make_archive


def http(settings, upstream, **kw) -> HttpSource:
    from eportal_core.testing.core import make_plugin_manager
    return _http_source(settings, make_plugin_manager(), upstream, **kw)


def test_the_hook_offers_http_and_directory(ps_settings):
    settings, pm = ps_settings()
    types = source_types(pm)
    assert {"http", "directory"} <= set(types)
    assert isinstance(types["http"](settings, AccessInfo("http", "https://patches.example.com/x")), HttpSource)
    with pytest.raises(SourceError, match="unknown patch source type 'ftp'"):
        make_source(pm, settings, AccessInfo("ftp", "ftp://x"))


@pytest.mark.parametrize("url, problem", [
    ("patches.example.com", "must start with http:// or https://"),
    ("ftp://patches.example.com/", "must start with http:// or https://"),
    ("https://user:pw@patches.example.com/", "not in the URL"),
    ("https://patches.example.com:99999/", "malformed port"),
    ("http://", "must start with http:// or https:// and name a host"),
])
def test_http_urls_are_checked(ps_settings, url, problem):
    settings, pm = ps_settings()
    with pytest.raises(SourceError, match=problem) as caught:
        make_source(pm, settings, AccessInfo("http", url))
    assert caught.value.field == "url"


def test_index_and_download_with_basic_auth(ps_settings, upstream, upstream_archives):
    settings, _ = ps_settings()
    offer(upstream, upstream_archives.good)
    source = http(settings, upstream)
    index = source.index()
    assert [e.name for e in index.entries] == [a.name for a in upstream_archives.good]
    assert index.problems == []
    first = index.entries[0]
    assert first.released == upstream_archives.good[0].released
    assert first.sha256 == hashlib.sha256(upstream_archives.good[0].path.read_bytes()).hexdigest()
    assert "CVE-2024-1086" in first.changelog
    seen = []
    fetched = source.fetch(first, progress=lambda name, done, total: seen.append((name, done, total)))
    assert fetched.temporary and fetched.path.read_bytes() == upstream_archives.good[0].path.read_bytes()
    assert fetched.path.parent == downloads(settings)
    assert seen[-1] == (first.name, first.size, first.size)
    assert all(hit.authorized for hit in upstream.hits)
    assert not any(hit.proxied for hit in upstream.hits)


def test_wrong_password_is_a_clear_error_and_never_shows_the_password(ps_settings, upstream, upstream_archives):
    settings, _ = ps_settings()
    offer(upstream, upstream_archives.good[:1])
    source = http(settings, upstream, password="Wrong-Secret-42")
    with pytest.raises(SourceError) as caught:
        source.index()
    message = str(caught.value)
    assert message == f"the source refused the login (HTTP 401 at {upstream.url}/patchsets.json): check the login and password"
    assert "Wrong-Secret-42" not in message and not caught.value.transient
    assert len(upstream.hits) == 1  # a refused login is not tried again


def test_wrong_url_and_unreachable_source(ps_settings, upstream):
    settings, pm = ps_settings()
    info = AccessInfo("http", upstream.url + "/nope", "", upstream.login, upstream.password)
    with pytest.raises(SourceError, match=r"not found at the source \(HTTP 404 at .*/nope/patchsets.json\): check the URL"):
        make_source(pm, settings, info).index()
    dead = AccessInfo("http", "http://127.0.0.1:9/kcare", "", "a", "b")  # the discard port: nobody listens
    with pytest.raises(SourceError, match=r"cannot reach http://127.0.0.1:9/kcare/patchsets.json: Connection refused") as caught:
        make_source(pm, settings, dead).index()
    assert caught.value.transient


def test_a_busy_index_is_tried_again(ps_settings, upstream, upstream_archives):
    settings, _ = ps_settings(**{"patch_source.retries": "2"})
    offer(upstream, upstream_archives.good[:2])
    upstream.fail_index(2)
    assert len(http(settings, upstream).index().entries) == 2
    assert [h.status for h in upstream.hits] == [503, 503, 200]
    upstream.fail_index(3)
    with pytest.raises(SourceError, match="answered HTTP 503"):
        http(settings, upstream).index()


def test_bad_index_entries_are_skipped_with_a_reason(ps_settings, upstream, upstream_archives):
    settings, _ = ps_settings()
    offer(upstream, upstream_archives.good[:2])
    upstream.entries["evil"] = {"name": "../../etc", "released": "2024-01-01T00:00:00Z"}
    upstream.entries["late"] = {"name": "K20240601_01", "released": "yesterday"}
    index = http(settings, upstream).index()
    assert [e.name for e in index.entries] == [a.name for a in upstream_archives.good[:2]]
    assert index.problems == [
        "'../../etc' is not a patchset name (K<YYYYMMDD>_<NN>, K<DDMMYYYY>_<N>, <DDMMYYYY>_<N>)",
        "K20240601_01: released 'yesterday' is not an ISO time like 2024-01-31T12:00:00Z",
    ]


def test_an_interrupted_download_resumes_with_range(ps_settings, upstream, upstream_archives):
    settings, _ = ps_settings()
    archive = upstream_archives.good[4]
    offer(upstream, [archive])
    size = archive.path.stat().st_size
    upstream.drop_once(archive.name, size // 3)
    source = http(settings, upstream)
    fetched = source.fetch(source.index().entries[0])
    assert fetched.path.read_bytes() == archive.path.read_bytes()
    hits = upstream.archive_hits(archive.name)
    assert [h.range for h in hits] == [None, f"bytes={size // 3}-"]
    assert [h.status for h in hits] == [200, 206]
    assert not (fetched.path.parent / f"{archive.name}.tar.bz2.part").exists()


def test_a_download_broken_off_without_retries_resumes_next_time(ps_settings, upstream, upstream_archives):
    settings, _ = ps_settings(**{"patch_source.retries": "0"})
    archive = upstream_archives.good[3]
    offer(upstream, [archive])
    upstream.drop_once(archive.name, 1000)
    source = http(settings, upstream)
    entry = source.index().entries[0]
    with pytest.raises(SourceError, match=f"the download of {archive.name} broke off after 1000 of {entry.size} bytes"):
        source.fetch(entry)
    part = downloads(settings) / f"{archive.name}.tar.bz2.part"
    assert part.stat().st_size == 1000
    fetched = source.fetch(entry)
    assert fetched.path.read_bytes() == archive.path.read_bytes()
    assert upstream.archive_hits(archive.name)[-1].range == "bytes=1000-"


def test_a_checksum_other_than_announced_is_refused_and_not_kept(ps_settings, upstream, upstream_archives):
    settings, _ = ps_settings()
    archive = upstream_archives.good[0]
    upstream.add(archive, sha256="0" * 64)
    source = http(settings, upstream)
    with pytest.raises(ArchiveRefused, match=f"{archive.name}: checksum mismatch: the download has sha256 [0-9a-f]{{64}}, "
                                             f"the source announced 0{{64}}"):
        source.fetch(source.index().entries[0])
    assert list((downloads(settings)).glob(f"{archive.name}*")) == []


def test_a_size_other_than_announced_is_refused(ps_settings, upstream, upstream_archives):
    settings, _ = ps_settings()
    archive = upstream_archives.good[0]
    upstream.add(archive, size=archive.path.stat().st_size + 10)
    source = http(settings, upstream)
    with pytest.raises(ArchiveRefused, match="the source sends .* bytes, but its index announced"):
        source.fetch(source.index().entries[0])


def test_requests_go_through_the_configured_proxy(ps_settings, upstream, upstream_archives, monkeypatch):
    for name in ("no_proxy", "NO_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    offer(upstream, upstream_archives.good[:1])
    # the upstream answers proxy-form requests too: the source's host name is not even resolvable
    settings, pm = ps_settings(**{"eportal.http_proxy": f"127.0.0.1:{upstream.port}"})
    assert proxies(settings)["http"] == f"http://127.0.0.1:{upstream.port}"
    info = AccessInfo("http", "http://patches.upstream.invalid/kcare", "", upstream.login, upstream.password)
    source = make_source(pm, settings, info)
    entry = source.index().entries[0]
    source.fetch(entry)
    assert [(h.path, h.proxied, h.authorized) for h in upstream.hits] == [
        ("/kcare/patchsets.json", True, True), (f"/kcare/{entry.name}.tar.bz2", True, True)]


def test_the_environment_proxy_is_the_fallback(ps_settings, upstream, upstream_archives, monkeypatch):
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{upstream.port}")
    offer(upstream, upstream_archives.good[:1])
    settings, pm = ps_settings()
    info = AccessInfo("http", "http://patches.upstream.invalid/kcare", "", upstream.login, upstream.password)
    assert len(make_source(pm, settings, info).index().entries) == 1
    assert upstream.hits[0].proxied


def test_proxy_settings_are_validated(ps_settings):
    with pytest.raises(SettingsError, match=r"setting eportal.https_proxy = \(hidden\) is not valid: expected a proxy URL"):
        ps_settings(**{"eportal.https_proxy": "ftp://user:secret@proxy:21"})


# --- directory ---------------------------------------------------------------------------------

def test_directory_source_lists_archives_from_their_manifests(ps_settings, upstream_archives, tmp_path):
    settings, pm = ps_settings()
    folder = tmp_path / "carried-in"
    folder.mkdir()
    for archive in upstream_archives.good[:3]:
        shutil.copy(archive.path, folder / archive.path.name)
    # a file name that says nothing: the archive itself names the patchset
    gz = make_archive(tmp_path / "gz", "K20240601_01", "2024-06-01T08:30:00Z", {KERNEL_IDS[0]: 6}, compression="gz")
    shutil.copy(gz.path, folder / "from-the-usb-stick.tar.gz")
    (folder / "notes.txt").write_text("not an archive")
    (folder / "K20240701_01.tar.bz2").write_bytes(b"BZh9 this is not bzip2")
    source = make_source(pm, settings, AccessInfo("directory", path=str(folder)))
    assert isinstance(source, DirectorySource)
    index = source.index()
    assert [e.name for e in index.entries] == [a.name for a in upstream_archives.good[:3]] + ["K20240601_01"]
    gz_entry = index.entries[-1]
    assert (gz_entry.product, gz_entry.released.isoformat()) == ("kernel", "2024-06-01T08:30:00")
    assert "K20240601_01 (2024-06-01)" in gz_entry.changelog
    assert gz_entry.origin == str(folder / "from-the-usb-stick.tar.gz")
    assert len(index.problems) == 1 and index.problems[0].startswith("K20240701_01.tar.bz2: the archive is truncated or corrupt")
    fetched = source.fetch(gz_entry)
    assert (fetched.path, fetched.temporary) == (folder / "from-the-usb-stick.tar.gz", False)


def test_directory_must_exist(ps_settings, tmp_path):
    settings, pm = ps_settings()
    with pytest.raises(SourceError, match=f"the folder {tmp_path}/missing does not exist") as caught:
        make_source(pm, settings, AccessInfo("directory", path=str(tmp_path / "missing")))
    assert caught.value.field == "path"
    with pytest.raises(SourceError, match="must be an absolute path"):
        make_source(pm, settings, AccessInfo("directory", path="relative/dir"))
    with pytest.raises(SourceError, match="give the folder"):
        make_source(pm, settings, AccessInfo("directory", path=""))
