"""The client's IP: the peer address, or the forwarded one when the peer is a trusted proxy."""
from __future__ import annotations

import ipaddress


def client_ip(request) -> str:
    peer = request.remote_addr or ""
    trusted = request.registry.settings.get("eportal.trusted_proxies") or []
    if not trusted or not _in(peer, trusted):
        return peer
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
