"""A small, fast HTTP/1.1 load client: a pool of worker threads, one kept-alive
``http.client`` connection per worker (reopened after a failure), an optional global rate limit,
and per-request latency. Standard library only.

    stats = run_requests("http://127.0.0.1:8000/health", requests=1000, concurrency=16)
    stats = run_requests(url, make_request=lambda i: Request("POST", "/x", b"a=1", FORM),
                         duration=10, rate=500, on_response=lambda i, req, status, body: ...)
"""
from __future__ import annotations

import base64
import http.client
import itertools
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from .stats import Stats

USER_AGENT = "eportal-sim/0.1"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
MAX_CONCURRENCY = 1024


class UrlError(ValueError):
    """A URL eportal-sim cannot use."""


class UnreachableError(ConnectionError):
    """Nothing answers at the URL's host and port."""


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    #: the URL's path without a trailing slash ("" for the site root): a portal behind a prefix
    prefix: str
    query: str = ""

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def target(self, path: str) -> str:
        """The request-target for ``path`` ("/admin/...") under the URL's prefix."""
        return self.prefix + path

    @property
    def own_target(self) -> str:
        """The URL's own path and query (what ``bare`` requests)."""
        return (self.prefix or "/") + (f"?{self.query}" if self.query else "")

    def __str__(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.prefix}"


def parse_url(url: str) -> Endpoint:
    """``http[s]://HOST[:PORT][/PATH][?QUERY]`` -> Endpoint, or UrlError with a one-line reason."""
    if not isinstance(url, str) or not url.strip():
        raise UrlError("no URL given: expected http://HOST[:PORT][/PATH]")
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlError(f"bad URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UrlError(f"bad URL {url!r}: expected http://HOST[:PORT][/PATH] (http or https)")
    if not parts.hostname:
        raise UrlError(f"bad URL {url!r}: no host")
    if parts.username or parts.password:
        raise UrlError(f"bad URL {url!r}: credentials in the URL are not supported")
    if parts.fragment:
        raise UrlError(f"bad URL {url!r}: no #fragment please")
    return Endpoint(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80),
                    parts.path.rstrip("/"), parts.query)


def basic_auth(credentials: str) -> str:
    """``USER[:PASSWORD]`` -> the value of an ``Authorization: Basic`` header (an agent sends its
    server_id as the user and no password)."""
    user, _, password = credentials.partition(":")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def check_reachable(endpoint: Endpoint, timeout: float = 5.0) -> None:
    """Open (and close) one TCP connection; UnreachableError with a one-line reason if that fails."""
    try:
        socket.create_connection((endpoint.host, endpoint.port), timeout=timeout).close()
    except socket.gaierror as exc:
        raise UnreachableError(f"cannot resolve host {endpoint.host!r} ({exc.strerror})") from None
    except TimeoutError:
        raise UnreachableError(f"cannot connect to {endpoint}: no answer within {timeout:g} s") from None
    except OSError as exc:
        raise UnreachableError(f"cannot connect to {endpoint}: {exc.strerror or exc}") from None


@dataclass(frozen=True, slots=True)
class Request:
    method: str = "GET"
    #: the request-target as sent: path and query ("/admin/api/kcare/checkin")
    target: str = "/"
    body: bytes | None = None
    headers: dict[str, str] | None = None


class RateLimiter:
    """A global token bucket of ``burst`` tokens refilled at ``rate`` per second, kept as the
    theoretical arrival time of the next request (GCRA): ``reserve()`` hands each caller the
    moment it may send, so concurrent workers never exceed the rate together."""

    def __init__(self, rate: float, burst: int = 1):
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.interval = 1.0 / rate
        self.tolerance = (max(1, burst) - 1) * self.interval
        self._tat = time.monotonic()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """The ``time.monotonic()`` at which the caller may send (now or later)."""
        with self._lock:
            now = time.monotonic()
            at = max(now, self._tat - self.tolerance)
            self._tat = max(self._tat, at) + self.interval
            return at


class _Counting:
    """Mixin: count connections opened, requests answered on the current socket; TCP_NODELAY."""
    opened = 0
    on_socket = 0

    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.opened += 1
        self.on_socket = 0


class _HTTPConnection(_Counting, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_Counting, http.client.HTTPSConnection):
    pass


#: errors of a kept-alive connection the server closed meanwhile (the request was not read)
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class _Progress:
    """One updating line on stderr: done/total, req/s, errors."""

    def __init__(self, locals_: list[Stats], total: int | None, duration: float | None, stream=None):
        self.locals = locals_
        self.total = total
        self.duration = duration
        self.stream = stream or sys.stderr
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="sim-progress", daemon=True)
        self.started = time.perf_counter()

    def _counts(self) -> tuple[int, int]:
        done = errors = 0
        for s in self.locals:
            errors += sum(s.errors.values())
            done += len(s.latencies)
        return done + errors, errors

    def _run(self):
        while not self.stop.wait(0.25):
            try:
                done, errors = self._counts()
            except RuntimeError:  # a worker added an error kind meanwhile: next tick
                continue
            elapsed = time.perf_counter() - self.started
            if self.total is not None:
                where = f"{done}/{self.total}"
            else:
                where = f"{done} ({min(elapsed, self.duration):.1f}/{self.duration:g} s)"
            rps = done / elapsed if elapsed > 0 else 0
            self.stream.write(f"\r\x1b[K  {where} requests  {rps:.0f} req/s  {errors} errors")
            self.stream.flush()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.stream.write("\r\x1b[K")
        self.stream.flush()


def run_requests(url: str | Endpoint, make_request: Callable[[int], Request] | None = None, *,
                 requests: int | None = None, duration: float | None = None, concurrency: int = 16,
                 rate: float = 0.0, timeout: float = 30.0,
                 on_response: Callable[[int, Request, int, bytes], None] | None = None,
                 headers: dict[str, str] | None = None, progress: bool = False) -> Stats:
    """Send requests ``0, 1, 2, ...`` (``make_request(i)``; default: GET the URL itself) until
    ``requests`` were sent or ``duration`` seconds passed (whichever comes first), from
    ``concurrency`` threads on kept-alive connections, at most ``rate`` per second (0 = no limit).

    Every answer counts by its status, whatever it is; only transport failures (refused, reset,
    timeout, malformed answer) count as errors. ``on_response(i, request, status, body)`` runs in
    the worker thread. An exception from ``make_request`` or ``on_response`` stops the run and is
    re-raised here. Ctrl-C stops it too: the partial counts come back with ``interrupted=True``.
    """
    endpoint = url if isinstance(url, Endpoint) else parse_url(url)
    if requests is None and duration is None:
        raise ValueError("give requests or duration (or both)")
    if requests is not None and requests < 0:
        raise ValueError("requests must be >= 0")
    if duration is not None and duration <= 0:
        raise ValueError("duration must be > 0")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be between 1 and {MAX_CONCURRENCY}")
    if rate < 0:
        raise ValueError("rate must be >= 0 (0 = as fast as possible)")
    if timeout <= 0:
        raise ValueError("timeout must be > 0")
    if make_request is None:
        own = Request("GET", endpoint.own_target)
        make_request = lambda i: own  # noqa: E731
    workers = concurrency if requests is None else max(1, min(concurrency, requests))
    base_headers = {"User-Agent": USER_AGENT, **(headers or {})}
    conn_class = _HTTPSConnection if endpoint.scheme == "https" else _HTTPConnection
    limiter = RateLimiter(rate) if rate > 0 else None
    counter = itertools.count()  # next() is atomic under the GIL
    stop = threading.Event()
    failures: list[BaseException] = []
    locals_ = [Stats() for _ in range(workers)]
    started = time.perf_counter()
    deadline = time.monotonic() + duration if duration is not None else None

    def worker(local: Stats) -> None:
        conn = conn_class(endpoint.host, endpoint.port, timeout=timeout)
        streak = 0  # consecutive transport errors: back off a little so a dead portal is not hammered
        try:
            while not stop.is_set():
                i = next(counter)
                if requests is not None and i >= requests:
                    return
                if limiter is not None:
                    at = limiter.reserve()
                    if deadline is not None and at >= deadline:
                        return
                    wait = at - time.monotonic()
                    if wait > 0 and stop.wait(wait):
                        return
                if deadline is not None and time.monotonic() >= deadline:
                    return
                req = make_request(i)
                hdrs = base_headers if not req.headers else {**base_headers, **req.headers}
                for attempt in (0, 1):
                    reused = conn.sock is not None and conn.on_socket > 0
                    t0 = time.perf_counter()
                    try:
                        conn.request(req.method, req.target, req.body, hdrs)
                        resp = conn.getresponse()
                        body = resp.read()
                    except _STALE as exc:
                        conn.close()
                        if reused and attempt == 0:
                            local.retries += 1
                            continue
                        local.errors[_error_name(exc)] += 1
                        status = None
                    except (OSError, http.client.HTTPException) as exc:
                        conn.close()
                        local.errors[_error_name(exc)] += 1
                        status = None
                    else:
                        local.latencies.append(time.perf_counter() - t0)
                        local.body_bytes += len(body)
                        conn.on_socket += 1
                        status = resp.status
                        local.status[status] += 1
                    break
                if status is None:
                    streak += 1
                    if stop.wait(min(0.2, 0.002 * 2 ** min(streak, 7))):
                        return
                    continue
                streak = 0
                if on_response is not None:
                    on_response(i, req, status, body)
        except BaseException as exc:  # a bug in make_request/on_response: stop everyone, re-raise
            failures.append(exc)
            stop.set()
        finally:
            local.connections = conn.opened
            conn.close()

    threads = [threading.Thread(target=worker, args=(local,), name=f"sim-worker-{n}", daemon=True)
               for n, local in enumerate(locals_)]
    stats = Stats(concurrency=workers, rate=rate)
    meter = _Progress(locals_, requests, duration) if progress else None
    try:
        if meter:
            meter.__enter__()
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.1)
    except KeyboardInterrupt:
        stats.interrupted = True
        stop.set()
        for t in threads:
            t.join(min(timeout, 5.0))
    finally:
        stats.elapsed = time.perf_counter() - started
        if meter:
            meter.__exit__(None, None, None)
    for local in locals_:
        stats.merge(local)
    if failures:
        raise failures[0]
    return stats


def _error_name(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    return type(exc).__name__
