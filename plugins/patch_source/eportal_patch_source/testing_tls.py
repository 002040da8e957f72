"""TLS material and a CONNECT proxy for tests of the ``http`` source over HTTPS (no pytest in here).

- :func:`make_test_pki`: a throw-away CA and a server certificate it signs, written with the
  ``openssl`` command line (EC P-256 keys: quick), valid for two days.
- :class:`ConnectProxy`: an HTTP proxy on a loopback port that only does ``CONNECT``: it records the
  targets it was asked for and every byte that went through it, both ways, as a network observer
  between eportal and the upstream would see them; optionally it wants a Basic proxy login.
"""
from __future__ import annotations

import base64
import selectors
import socket
import socketserver
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from .testing import ServedInThread

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class TestPki:
    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


def _openssl(*args) -> None:
    done = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()[:500]}")


def make_ca(folder: Path, name: str = "eportal test CA") -> tuple[Path, Path]:
    """``(ca.pem, ca.key)`` of a new self-signed CA in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "ca.pem", folder / "ca.key"
    _openssl("req", "-x509", *_EC, "-days", "2", "-subj", f"/CN={name}", "-keyout", key, "-out", cert,
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def make_test_pki(folder, names: tuple[str, ...] = ("localhost",)) -> TestPki:
    """A CA and a server certificate for ``names`` (DNS names, or IP addresses) signed by it."""
    folder = Path(folder)
    ca_cert, ca_key = make_ca(folder)
    key, csr, cert = folder / "server.key", folder / "server.csr", folder / "server.pem"
    _openssl("req", "-new", *_EC, "-subj", f"/CN={names[0]}", "-keyout", key, "-out", csr)
    alt = ",".join(f"IP:{n}" if n.replace(".", "").isdigit() or ":" in n else f"DNS:{n}" for n in names)
    ext = folder / "server.ext"
    ext.write_text(f"subjectAltName={alt}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
    _openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
             "-extfile", ext, "-out", cert)
    return TestPki(ca_cert, ca_key, cert, key)


class ConnectProxy(ServedInThread):
    """A CONNECT-only proxy on 127.0.0.1. :attr:`targets` lists the ``host:port`` asked for,
    :attr:`heads` the request heads, :meth:`seen` every byte that passed (heads and tunnels)."""

    def __init__(self, login: str = "", password: str = ""):
        self.login, self.password = login, password
        self.targets: list[str] = []
        self.heads: list[bytes] = []
        self._seen = bytearray()
        self._lock = threading.Lock()
        self._server: socketserver.ThreadingTCPServer | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """``http://[login:password@]127.0.0.1:PORT``, the form eportal.https_proxy takes."""
        auth = f"{self.login}:{self.password}@" if self.login else ""
        return f"http://{auth}127.0.0.1:{self.port}"

    def seen(self) -> bytes:
        with self._lock:
            return bytes(self._seen)

    def _saw(self, data: bytes) -> None:
        with self._lock:
            self._seen += data

    def start(self) -> ConnectProxy:
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                proxy._handle(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="test-connect-proxy", daemon=True).start()
        return self


    # --- one client ---------------------------------------------------------------------------

    def _handle(self, client: socket.socket) -> None:
        client.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
        self._saw(head)
        head, _, early = head.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, *_ = (lines[0].split(" ") + ["", ""])[:3]
        self.heads.append(head)
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if method != "CONNECT":
            return self._reply(client, b"405 Method Not Allowed")
        self.targets.append(target)
        if self.login:
            token = base64.b64encode(f"{self.login}:{self.password}".encode()).decode()
            if headers.get("proxy-authorization") != f"Basic {token}":
                return self._reply(client, b"407 Proxy Authentication Required",
                                   b'Proxy-Authenticate: Basic realm="proxy"\r\n')
        host, _, port = target.rpartition(":")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=10)
        except (OSError, ValueError):
            return self._reply(client, b"502 Bad Gateway")
        with upstream:
            self._reply(client, b"200 Connection established")
            if early:
                upstream.sendall(early)
            self._pump(client, upstream)

    def _reply(self, client: socket.socket, status: bytes, headers: bytes = b"") -> None:
        if not status.startswith(b"200"):  # a refusal has an (empty) body; a tunnel has none
            headers += b"Content-Length: 0\r\n"
        answer = b"HTTP/1.1 " + status + b"\r\n" + headers + b"\r\n"
        self._saw(answer)
        client.sendall(answer)

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        """Copy bytes both ways (recording them) until one side closes."""
        other = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as sel:
            for sock in other:
                sel.register(sock, selectors.EVENT_READ)
            while True:
                ready = sel.select(timeout=30)
                if not ready:
                    return
                for key, _ in ready:
                    try:
                        data = key.fileobj.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    self._saw(data)
                    try:
                        other[key.fileobj].sendall(data)
                    except OSError:
                        return
