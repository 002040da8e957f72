"""The ``http`` source (protocol.md §7): ``GET <url>/patchsets.json`` and ``GET <url>/<NAME>.tar.bz2``
with HTTP Basic auth, through ``eportal.http_proxy`` / ``eportal.https_proxy`` (else the environment's
``http_proxy`` / ``https_proxy``), standard library only.

https:// sources are verified against ``patch_source.ca_file`` (else the system's CAs, see
:mod:`.tls`); through a proxy they are reached with ``CONNECT``, so the proxy sees the host and port
and nothing else: the login and password travel inside TLS.

Downloads go to ``<data_dir>/patches/.downloads/<NAME>.tar.bz2.part`` (locked while written), once
the free space there was checked against the announced size. An interrupted download is resumed
with ``Range`` (here with backoff, or at the next poll); the finished file must have the size and
sha256 the index announced before it is handed to the import.
"""
from __future__ import annotations

import base64
import fcntl
import hashlib
import http.client
import json
import logging
import os
import re
import socket
import ssl
import time
import urllib.error
import urllib.request
from urllib.parse import quote, urlsplit

from eportal_core.api import ArchiveRefused, Fetched, Index, IndexEntry, Progress, SourceError, diskspace, parse_entry

from . import tls
from .state import downloads_dir

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
MAX_INDEX_BYTES = 64 * 2**20
USER_AGENT = "eportal-patch-source/0.1"
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
#: statuses worth trying again: the upstream or a proxy is busy or restarting
TRANSIENT_STATUSES = {408, 425, 429, 500, 502, 503, 504}


def proxies(settings: dict) -> dict[str, str]:
    """The proxies every request goes through: the ini's, else the environment's (with its no_proxy)."""
    found = dict(urllib.request.getproxies())
    for scheme in ("http", "https"):
        configured = settings.get(f"eportal.{scheme}_proxy") or ""
        if configured:
            found[scheme] = configured
    return found


def build_opener(settings: dict) -> urllib.request.OpenerDirector:
    """urllib with the proxies and the TLS context; an https:// request through a proxy is tunnelled
    (``CONNECT``) and its certificate checked against the same context as a direct one."""
    return urllib.request.build_opener(urllib.request.ProxyHandler(proxies(settings)),
                                       urllib.request.HTTPSHandler(context=tls.client_context(settings)))


def check_proxy(settings: dict, url: str) -> None:
    """urllib speaks plain HTTP to a proxy when it tunnels (``CONNECT``): an https:// proxy would get
    cleartext and fail obscurely, so that combination is refused in one sentence instead."""
    host = urlsplit(url).hostname or ""
    proxy = proxies(settings).get("https", "") if url.startswith("https:") else ""
    if proxy.startswith("https://") and not urllib.request.proxy_bypass(host):
        where = "eportal.https_proxy" if settings.get("eportal.https_proxy") else "the environment's https_proxy"
        raise SourceError(f"{where} is an https:// proxy, which cannot carry https:// sources here: "
                          "give the proxy's http:// address (the source's TLS then runs through it)")


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SourceError("the URL must start with http:// or https:// and name a host", field="url")
    if parts.username or parts.password:
        raise SourceError("put the login and password in their own fields, not in the URL", field="url")
    if parts.query or parts.fragment:
        raise SourceError("the URL must not have a ?query or #fragment", field="url")
    try:
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError:
        raise SourceError("the URL has a malformed port", field="url") from None
    return url.rstrip("/")


class HttpSource:
    kind = "http"

    def __init__(self, settings: dict, access):
        self.base = check_url(access.url)
        self.settings = settings
        self.timeout = settings.get("patch_source.timeout_seconds", 60)
        self.retries = settings.get("patch_source.retries", 3)
        self.backoff = settings.get("patch_source.retry_backoff_seconds", 2)
        self.downloads = downloads_dir(settings)
        check_proxy(settings, self.base)
        self.opener = build_opener(settings)
        self._auth = None
        if access.login or access.password:
            token = base64.b64encode(f"{access.login}:{access.password}".encode()).decode("ascii")
            self._auth = f"Basic {token}"

    # --- requests ---------------------------------------------------------------------------

    def url_of(self, name: str) -> str:
        return f"{self.base}/{quote(name)}.tar.bz2"

    def _open(self, url: str, headers: dict | None = None):
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
        if self._auth:
            # unredirected: a redirect to another host (a CDN) must not carry the credentials along
            request.add_unredirected_header("Authorization", self._auth)
        try:
            return self.opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise _http_error(exc.code, url) from None
        except urllib.error.URLError as exc:
            raise self._network_error(exc.reason, url) from None
        except TimeoutError:
            raise SourceError(f"{url} did not answer within {self.timeout} s", transient=True) from None
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            raise self._network_error(exc, url) from None

    def _network_error(self, reason, url: str) -> SourceError:
        """Network trouble is transient; a refused certificate or proxy login is not."""
        refused = tls.certificate_error(reason, url, self.settings, proxies(self.settings).get("http", ""))
        if refused is not None:
            return refused
        if str(reason).startswith("Tunnel connection failed: 407"):  # the proxy refused our CONNECT
            return _http_error(407, url)
        return SourceError(f"cannot reach {url}: {_reason(reason)}", transient=True)

    def _retrying(self, what, action):
        """Run ``action()``; transient SourceErrors are tried again ``retries`` times with backoff."""
        for attempt in range(self.retries + 1):
            try:
                return action()
            except SourceError as exc:
                if not exc.transient or attempt == self.retries:
                    raise
                delay = self.backoff * 2 ** attempt
                log.info("%s: %s; trying again in %s s", what, exc, delay)
                time.sleep(delay)

    # --- the index --------------------------------------------------------------------------

    def index(self) -> Index:
        url = f"{self.base}/patchsets.json"
        return self._retrying("patchsets.json", lambda: self._read_index(url))

    def _read_index(self, url: str) -> Index:
        with self._open(url) as resp:
            try:
                body = resp.read(MAX_INDEX_BYTES + 1)
            except (OSError, http.client.HTTPException) as exc:
                raise SourceError(f"reading {url} failed: {_reason(exc)}", transient=True) from None
        if len(body) > MAX_INDEX_BYTES:
            raise SourceError(f"{url} is larger than {MAX_INDEX_BYTES // 2**20} MB")
        try:
            rows = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise SourceError(f"{url} is not JSON: is the URL the patch source's?") from None
        if not isinstance(rows, list):
            raise SourceError(f"{url} is not a JSON list of patchsets")
        index = Index()
        seen = set()
        for raw in rows:
            try:
                entry = parse_entry(raw)
            except ValueError as exc:
                index.problems.append(str(exc))
                continue
            if entry.name in seen:
                index.problems.append(f"{entry.name}: listed twice; the first is used")
                continue
            seen.add(entry.name)
            index.entries.append(IndexEntry(**{**entry.__dict__, "origin": self.url_of(entry.name)}))
        return index

    # --- archives ---------------------------------------------------------------------------

    def fetch(self, entry: IndexEntry, progress: Progress | None = None) -> Fetched:
        """Download (or finish downloading) the archive and check it against the index."""
        self.downloads.mkdir(mode=0o750, parents=True, exist_ok=True)
        part = self.downloads / f"{entry.name}.tar.bz2.part"
        final = self.downloads / f"{entry.name}.tar.bz2"
        if entry.size is not None and not final.exists():  # before a .part is even created
            self._room_for(entry.name, entry.size - (part.stat().st_size if part.exists() else 0))
        fd = os.open(part, os.O_RDWR | os.O_CREAT, 0o640)
        with os.fdopen(fd, "r+b") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SourceError(f"{entry.name} is being downloaded by another process", transient=True) from None
            if final.exists():  # downloaded before, but its import did not finish
                with open(final, "rb") as done:
                    if _verify(done, entry) is None:
                        part.unlink(missing_ok=True)
                        return Fetched(final, temporary=True)
                final.unlink()
            try:
                for fresh_start in (False, True):
                    if fresh_start:
                        fh.truncate(0)
                        fh.seek(0)
                    resumed = self._retrying(entry.name, lambda: self._download(entry, fh, progress))
                    problem = _verify(fh, entry)
                    if problem is None:
                        break
                    if resumed and not fresh_start:
                        log.info("%s after a resumed download: downloading it again from the start", problem)
                        continue
                    raise ArchiveRefused(problem)
            except ArchiveRefused:
                fh.truncate(0)
                part.unlink(missing_ok=True)  # a bad archive is not kept, nor resumed
                raise
            except SourceError:
                if fh.seek(0, os.SEEK_END) == 0:
                    part.unlink(missing_ok=True)  # nothing to resume: leave no empty file behind
                raise
            os.replace(part, final)
        return Fetched(final, temporary=True)

    def _download(self, entry: IndexEntry, fh, progress: Progress | None) -> bool:
        """Append the rest of the archive to ``fh``; True when an earlier part was resumed."""
        have = fh.seek(0, os.SEEK_END)
        if entry.size is not None and have > entry.size:
            fh.truncate(0)
            fh.seek(0)
            have = 0
        if entry.size is not None and have == entry.size and have > 0:
            return True  # complete already (an interrupted import, or a process killed after the last byte)
        url = self.url_of(entry.name)
        try:
            resp = self._open(url, {"Range": f"bytes={have}-"} if have else None)
        except SourceError as exc:
            if have and exc.status == 416:  # nothing after what we have: check it as it is
                return True
            raise
        with resp:
            total = None
            if resp.status == 206 and have:
                match = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
                if not match or int(match.group(1)) != have:
                    raise SourceError(f"{url} answered a range we did not ask for", transient=True)
                total = int(match.group(3)) if match.group(3) != "*" else None
            else:  # a whole answer: the server does not do ranges, start again
                fh.truncate(0)
                fh.seek(0)
                have_before, have = have, 0
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                if have_before:
                    log.info("%s: the source sent the whole archive again instead of the rest", entry.name)
            resumed = have > 0
            if entry.size is not None and total is not None and total != entry.size:
                raise ArchiveRefused(f"{entry.name}: the source sends {total} bytes, but its index announced {entry.size}")
            if entry.size is None and total is not None:  # the index did not say: the answer does
                self._room_for(entry.name, total - have)
            total = total if total is not None else entry.size
            done = have
            while True:
                try:
                    chunk = resp.read(CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    fh.flush()
                    raise SourceError(f"the download of {entry.name} broke off after {done} bytes "
                                      f"({_reason(exc)}); it resumes from there", transient=True) from None
                if not chunk:
                    break
                fh.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(entry.name, done, total)
            fh.flush()
            if total is not None and done < total:
                raise SourceError(f"the download of {entry.name} broke off after {done} of {total} bytes; "
                                  "it resumes from there", transient=True)
            return resumed

    def _room_for(self, name: str, need: int) -> None:
        """SourceError (not retried: waiting seconds frees no disk) when ``need`` more bytes of the
        download would not fit in the downloads folder with the reserve left free."""
        try:
            diskspace.check(self.downloads, max(need, 0), f"the download of {name}")
        except diskspace.NotEnoughSpace as exc:
            raise SourceError(str(exc), space_needed=exc.need) from None


def _verify(fh, entry: IndexEntry) -> str | None:
    """None when the downloaded file is what the index announced, else why not."""
    size = fh.seek(0, os.SEEK_END)
    if entry.size is not None and size != entry.size:
        return f"{entry.name}: the download has {size} bytes, the source announced {entry.size}"
    if entry.sha256:
        sha = hashlib.sha256()
        fh.seek(0)
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
        if sha.hexdigest() != entry.sha256:
            return (f"{entry.name}: checksum mismatch: the download has sha256 {sha.hexdigest()}, "
                    f"the source announced {entry.sha256}")
    return None


def _http_error(code: int, url: str) -> SourceError:
    if code == 401:
        error = SourceError(f"the source refused the login (HTTP 401 at {url}): check the login and password")
    elif code == 403:
        error = SourceError(f"the source denied access (HTTP 403 at {url}): is this login allowed to download?")
    elif code == 404:
        error = SourceError(f"not found at the source (HTTP 404 at {url}): check the URL")
    elif code == 407:
        error = SourceError(f"the proxy wants a login (HTTP 407 at {url}): put it in eportal.http_proxy / "
                            "eportal.https_proxy as http://USER:PASSWORD@HOST:PORT")
    else:
        error = SourceError(f"the source answered HTTP {code} at {url}", transient=code in TRANSIENT_STATUSES)
    error.status = code
    return error


def _reason(reason) -> str:
    if isinstance(reason, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(reason, ssl.SSLError):
        return f"TLS error: {reason.reason or reason}"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    text = str(reason) or type(reason).__name__
    return text.splitlines()[0][:200]


def http_source(settings: dict, access) -> HttpSource:
    """The factory the ``eportal_patch_source_types`` hook offers as ``http``."""
    return HttpSource(settings, access)

