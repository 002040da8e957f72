"""Helpers the patch source tests import (a unique module name: the suite has several tests/ folders)."""
from __future__ import annotations

from pathlib import Path

from eportal_patch_source.access import AccessInfo
from eportal_patch_source.sources import make_source


def offer(upstream, archives) -> None:
    """Put ``archives`` into the upstream's index, in the order given."""
    for archive in archives:
        upstream.add(archive)


def http_access(upstream, **kw) -> AccessInfo:
    return AccessInfo("http", kw.get("url", upstream.url), "", kw.get("login", upstream.login),
                      kw.get("password", upstream.password))


def http_source(settings, pm, upstream, **kw):
    return make_source(pm, settings, http_access(upstream, **kw))


def data_dir(settings) -> Path:
    return Path(settings["eportal.data_dir"])


def downloads(settings) -> Path:
    return data_dir(settings) / "patches" / ".downloads"


# --- agents over real HTTP (protocol.md §2) --------------------------------------------------------

def http_request(url: str, *, headers: dict | None = None, data: dict | None = None, method: str = "GET"):
    """``(status, body bytes)``; HTTP errors are answers too."""
    import urllib.error
    import urllib.parse
    import urllib.request
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def register_agent(server, key: str, hostname: str) -> str:
    """Register like ``kcarectl --register KEY``: the server_id."""
    import json
    status, body = http_request(server.url + "/admin/api/kcare/register_server.json", method="POST",
                                data={"key": key, "hostname": hostname})
    answer = json.loads(body)
    assert status == 200 and answer["code"] == 0, answer
    return answer["server_id"]


def agent_get(server, path: str, server_id: str):
    """A GET as the agent does it: HTTP Basic with user = server_id."""
    import base64
    auth = "Basic " + base64.b64encode(f"{server_id}:x".encode()).decode()
    return http_request(server.url + path, headers={"Authorization": auth})
