"""The client's IP: the peer address, or the forwarded one when the peer is a trusted proxy."""
from __future__ import annotations

import ipaddress


def from_trusted_proxy(request) -> bool:
    """The peer is one of ``eportal.trusted_proxies``: only then are its X-Forwarded-* headers believed
    (the client IP here, the public URL in the agent scripts)."""
    trusted = request.registry.settings["eportal.trusted_proxies"]
    return bool(trusted) and _in(request.remote_addr or "", trusted)


def client_ip(request) -> str:
    peer = request.remote_addr or ""
    if not from_trusted_proxy(request):
        return peer
    trusted = request.registry.settings["eportal.trusted_proxies"]
    forwarded = request.headers.get("X-Forwarded-For")
    if forwarded:
        # walk from the right: the first hop that is not a trusted proxy is the client
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        for hop in reversed(hops):
            if not _valid(hop):
                return peer
            if not _in(hop, trusted):
                return hop
        # every hop is a trusted address: the leftmost one is the client (inside the trusted network)
        return hops[0] if hops else peer
    real = (request.headers.get("X-Real-IP") or "").strip()
    return real if _valid(real) else peer


def _valid(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _in(addr: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in net for net in networks)
