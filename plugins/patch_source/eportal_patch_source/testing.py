"""A patch source upstream for tests and the demo: real HTTP on a free loopback port.

:class:`Upstream` serves ``<prefix>/patchsets.json`` and ``<prefix>/<NAME>.tar.bz2`` (protocol.md §7)
behind HTTP Basic auth, with ``Range`` (206, 416), and records every request. It answers proxy-style
requests too (``GET http://host/path``), so a test can point ``eportal.http_proxy`` at it and see
that the request came through the proxy. With ``tls`` (a server ``ssl.SSLContext``, see
:mod:`.testing_tls`) it speaks HTTPS on the same port, each handshake in the request's own thread;
handshakes the client broke off are kept in :attr:`Upstream.tls_failures`. Switches: :meth:`drop_once` (cut the connection after N
bytes of an archive, once: the client must resume), :meth:`fail_index` (answer 503 N times),
:meth:`block` / :meth:`unblock`, and :meth:`add` with a lying ``sha256`` or ``size``.

No pytest in here; ``tests/conftest.py`` wraps it in fixtures.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import ssl
import tarfile
import threading
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass(frozen=True)
class Hit:
    method: str
    path: str
    range: str | None
    authorized: bool
    #: the request came in proxy form (an absolute URL): it went through a proxy setting
    proxied: bool
    status: int


def sha256_of(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def changelog_of(path: Path, name: str) -> str:
    try:
        with tarfile.open(path, "r:*") as tar:
            return tar.extractfile(f"{name}/changelog").read().decode("utf-8", errors="replace")
    except (tarfile.TarError, KeyError, AttributeError, EOFError, OSError):
        return ""


class ServedInThread:
    """Stopping, and the ``with`` block, of a test server run by a thread of this process: the
    subclass's ``start()`` puts its socketserver in ``self._server``."""

    _server = None

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Upstream(ServedInThread):
    def __init__(self, login: str = "upstream-user", password: str = "upstream-Pass-1", prefix: str = "/kcare",
                 *, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"):
        """``host`` is the name :attr:`url` uses (``localhost`` to match a test certificate); the
        server listens on 127.0.0.1 whatever it is."""
        self.login, self.password, self.prefix = login, password, prefix.rstrip("/")
        self.tls, self.host = tls, host
        #: one line per TLS handshake that failed (the client refused the certificate, or spoke plain HTTP)
        self.tls_failures: list[str] = []
        self.entries: dict[str, dict] = {}
        self.files: dict[str, Path] = {}
        self.hits: list[Hit] = []
        self._drops: dict[str, int] = {}
        self._index_failures = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- content ----------------------------------------------------------------------------

    def add(self, archive, *, name: str | None = None, released: datetime | str | None = None,
            status: str = "available", sha256: str | None = None, size: int | None = None,
            changelog: str | None = None, product: str = "kernel") -> dict:
        """Offer ``archive`` (a path or a testing.patches.PatchArchive). ``sha256``/``size`` override
        what the index announces (to announce something else than what is served)."""
        path = Path(getattr(archive, "path", archive))
        name = name or getattr(archive, "name", None) or path.name.split(".tar.")[0]
        released = released if released is not None else getattr(archive, "released", None)
        if isinstance(released, datetime):
            released = released.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
        entry = {"name": name, "product": product, "released": released, "status": status,
                 "size": path.stat().st_size if size is None else size,
                 "sha256": sha256_of(path) if sha256 is None else sha256,
                 "changelog": changelog_of(path, name) if changelog is None else changelog}
        with self._lock:
            self.entries[name] = entry
            self.files[name] = path
        return entry

    def remove(self, name: str) -> None:
        with self._lock:
            self.entries.pop(name, None)
            self.files.pop(name, None)

    def block(self, name: str) -> None:
        self.entries[name]["status"] = "blocked"

    def unblock(self, name: str) -> None:
        self.entries[name]["status"] = "available"

    def drop_once(self, name: str, after_bytes: int) -> None:
        """The next download of ``name`` stops after ``after_bytes`` bytes (the connection is cut)."""
        self._drops[name] = after_bytes

    def fail_index(self, times: int = 1) -> None:
        """The next ``times`` requests for patchsets.json answer 503."""
        self._index_failures = times

    def archive_hits(self, name: str) -> list[Hit]:
        return [h for h in self.hits if h.path.endswith(f"/{name}.tar.bz2")]

    # --- life cycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}{self.prefix}"

    def start(self) -> Upstream:
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._server.upstream = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="test-upstream", daemon=True)
        self._thread.start()
        return self



class _Server(ThreadingHTTPServer):
    daemon_threads = True
    upstream: Upstream

    def finish_request(self, request, client_address):
        context = self.upstream.tls
        if context is None:
            return super().finish_request(request, client_address)
        request.settimeout(10)  # a client that never finishes its handshake must not hold a thread
        try:
            wrapped = context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.upstream.tls_failures.append(str(exc))
            return None
        try:
            return super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()


def _handler(upstream: Upstream):
    class Handler(BaseHTTPRequestHandler):
        server_version = "test-upstream/1"

        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            proxied = self.path.startswith(("http://", "https://"))
            path = unquote(urlsplit(self.path).path) if proxied else unquote(self.path.split("?", 1)[0])
            expected = "Basic " + base64.b64encode(f"{upstream.login}:{upstream.password}".encode()).decode()
            authorized = self.headers.get("Authorization") == expected
            self._hit = (path, self.headers.get("Range"), authorized, proxied)
            self._answer(path, authorized)

        def _record(self, status: int) -> None:
            # before the answer goes out: a client that got it may look at the hits at once
            path, wanted, authorized, proxied = self._hit
            upstream.hits.append(Hit("GET", path, wanted, authorized, proxied, status))

        def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> int:
            self._record(status)
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return status

        def _answer(self, path: str, authorized: bool) -> int:
            if not authorized:
                return self._send(401, b"login required\n", {"WWW-Authenticate": 'Basic realm="patches"'})
            if path == f"{upstream.prefix}/patchsets.json":
                if upstream._index_failures > 0:
                    upstream._index_failures -= 1
                    return self._send(503, b"busy\n")
                body = json.dumps(list(upstream.entries.values())).encode()
                return self._send(200, body, {"Content-Type": "application/json"})
            match = re.fullmatch(re.escape(upstream.prefix) + r"/([A-Za-z0-9_]+)\.tar\.bz2", path)
            if not match or match.group(1) not in upstream.files:
                return self._send(404, b"not found\n")
            return self._archive(match.group(1))

        def _archive(self, name: str) -> int:
            data = upstream.files[name].read_bytes()
            start, end, status = 0, len(data) - 1, 200
            wanted = self.headers.get("Range")
            if wanted:
                m = _RANGE.match(wanted)
                if not m:
                    return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                start = int(m.group(1))
                end = min(int(m.group(2)), len(data) - 1) if m.group(2) else len(data) - 1
                if start >= len(data) or start > end:
                    return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                status = 206
            body = data[start:end + 1]
            self._record(status)
            self.send_response(status)
            self.send_header("Content-Type", "application/x-bzip2")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(body)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            self.end_headers()
            cut = upstream._drops.pop(name, None)
            if cut is not None and cut < len(body):
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)  # the connection breaks mid-download
                self.close_connection = True
                return status
            self.wfile.write(body)
            return status

    return Handler
