"""What a simulated agent does against a portal (protocol.md §2): register, check in, ask for
its latest patch level. Each returns the run's :class:`~eportal_sim.stats.Stats`."""
from __future__ import annotations

import base64
import dataclasses
import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from .client import FORM, Endpoint, Request, basic_auth, parse_url, run_requests
from .fleet import ServerInfo, SimServer
from .stats import Stats

REGISTER_PATH = "/admin/api/kcare/register_server.json"
CHECKIN_PATH = "/admin/api/kcare/checkin"
SERVER_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{15}$")

#: registration answer codes (protocol.md §2)
REGISTER_CODES = {0: "registered", 1: "key disabled", 2: "unknown key", 3: "key limit reached"}
MODES = ("checkin", "latest")
#: answers that are not failures, per mode: 404 is the portal's "no patches for this kernel yet"
EXPECTED = {"register": {200}, "checkin": {200}, "latest": {200, 404}}


@dataclass
class RegisterResult:
    #: the servers registered (fleet order); those the portal refused are left out
    servers: list[SimServer]
    #: registration answers by code ("0".."3"; "bad-answer" for a 200 that is not the JSON of §2)
    codes: Counter
    stats: Stats
    #: servers sent for registration
    attempted: int = 0

    @property
    def failed(self) -> int:
        """Servers not registered (refused, bad answer, HTTP error or transport error)."""
        return self.attempted - len(self.servers)


def _endpoint(url) -> Endpoint:
    return url if isinstance(url, Endpoint) else parse_url(url)


def register_fleet(url: str | Endpoint, key: str, infos: Sequence[ServerInfo], *, concurrency: int = 16,
                   rate: float = 0.0, timeout: float = 30.0, progress: bool = False) -> RegisterResult:
    """Register every server of ``infos`` under ``key``: ``POST register_server.json?key=K&hostname=H``
    with the other info fields (tags included) as a form body, as the agent's first contact."""
    endpoint = _endpoint(url)
    path = endpoint.target(REGISTER_PATH)
    prepared = []
    for info in infos:
        fields = info.params(tags=True)
        hostname = fields.pop("hostname")
        target = f"{path}?{urlencode({'key': key, 'hostname': hostname})}"
        prepared.append(Request("POST", target, urlencode(fields).encode(), FORM))
    ids: list[str | None] = [None] * len(prepared)
    codes: Counter = Counter()
    lock = threading.Lock()

    def on_response(i, req, status, body):
        if status != 200:
            return
        try:
            answer = json.loads(body)
            code = answer["code"]
            sid = answer.get("server_id") if code == 0 else None
        except (ValueError, TypeError, KeyError, AttributeError):
            code, sid = "bad-answer", None
        if code == 0 and not (isinstance(sid, str) and SERVER_ID_RE.match(sid)):
            code = "bad-answer"
        if code == 0:
            ids[i] = sid
        with lock:
            codes[str(code)] += 1

    stats = run_requests(endpoint, prepared.__getitem__, requests=len(prepared), concurrency=concurrency,
                         rate=rate, timeout=timeout, on_response=on_response, progress=progress)
    servers = [SimServer(sid, info) for sid, info in zip(ids, infos, strict=True) if sid]
    return RegisterResult(servers, codes, stats, len(prepared))


class _Drift:
    """How a server's info moves between check-ins: uptime grows with the clock, the patch level
    rises now and then (a new patch loaded), and rarely the server reboots (uptime starts over)."""

    def __init__(self, servers: Sequence[SimServer], seed: int):
        self.infos = [dataclasses.replace(s.info) for s in servers]
        self.booted = [time.monotonic() - s.info.uptime for s in servers]
        self.seed = seed

    def info(self, n: int, i: int) -> ServerInfo:
        info = self.infos[n]
        roll = random.Random(self.seed * 1_000_003 + i).random()
        if roll < 0.005:  # reboot
            self.booted[n] = time.monotonic() - 60
        elif roll < 0.035:  # a newer patch level loaded
            info.patch_level = min(info.patch_level + 1, 20) if info.patch_level >= 1 else 1
        info.uptime = max(0, int(time.monotonic() - self.booted[n]))
        return info


def checkin_fleet(url: str | Endpoint, servers: Sequence[SimServer], *, mode: str = "checkin",
                  requests: int | None = None, duration: float | None = None, concurrency: int = 16,
                  rate: float = 0.0, timeout: float = 30.0, seed: int = 1, send_info: bool = False,
                  progress: bool = False) -> Stats:
    """Check-ins of the fleet, server after server (request ``i`` is server ``i % len(servers)``).

    ``mode="checkin"``: ``POST checkin`` with server_id and the info (without tags) as a form.
    ``mode="latest"``: ``GET /<kernel_id>/latest.v2`` with HTTP Basic user = server_id, the
    patch-request check-in; ``send_info`` adds ``?info=<urlsafe base64 JSON>``. The servers
    passed in are not modified. Default: one request per server.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    if not servers:
        raise ValueError("the fleet is empty")
    endpoint = _endpoint(url)
    if requests is None and duration is None:
        requests = len(servers)
    drift = _Drift(servers, seed)
    count = len(servers)
    if mode == "checkin":
        target = endpoint.target(CHECKIN_PATH)
        ids = [quote(s.server_id) for s in servers]

        def make(i: int) -> Request:
            n = i % count
            body = f"server_id={ids[n]}&" + urlencode(drift.info(n, i).params(tags=False))
            return Request("POST", target, body.encode(), FORM)
    else:
        auth = [{"Authorization": basic_auth(s.server_id)} for s in servers]
        targets = [endpoint.target(f"/{s.info.kernel_id}/latest.v2") for s in servers]

        def make(i: int) -> Request:
            n = i % count
            if not send_info:
                return Request("GET", targets[n], None, auth[n])
            blob = base64.urlsafe_b64encode(json.dumps(drift.info(n, i).params(tags=False)).encode()).decode()
            return Request("GET", f"{targets[n]}?info={blob}", None, auth[n])

    return run_requests(endpoint, make, requests=requests, duration=duration, concurrency=concurrency,
                        rate=rate, timeout=timeout, progress=progress)
