"""The client IP behind trusted proxies (used for login throttling and the audit trail)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from webob import Request

from eportal_core.settings import as_networks
from eportal_core.web.clientip import client_ip

PROXIES = "10.0.0.0/8 192.0.2.1 2001:db8::/32"


def request(peer: str, trusted: str = PROXIES, **headers) -> Request:
    req = Request.blank("/admin/login", remote_addr=peer,
                        headers={k.replace("_", "-"): v for k, v in headers.items()})
    req.registry = SimpleNamespace(settings={"eportal.trusted_proxies": as_networks(trusted)})
    return req


def test_no_trusted_proxies_means_the_peer():
    req = request("203.0.113.5", trusted="", X_Forwarded_For="198.51.100.7", X_Real_IP="198.51.100.8")
    assert client_ip(req) == "203.0.113.5"


def test_forwarded_headers_from_an_untrusted_peer_are_ignored():
    req = request("203.0.113.5", X_Forwarded_For="198.51.100.7", X_Real_IP="198.51.100.8")
    assert client_ip(req) == "203.0.113.5"


def test_forwarded_for_from_a_trusted_proxy():
    assert client_ip(request("10.1.2.3", X_Forwarded_For="198.51.100.7")) == "198.51.100.7"
    assert client_ip(request("192.0.2.1", X_Forwarded_For="198.51.100.7")) == "198.51.100.7"


def test_a_single_trusted_address_is_not_its_whole_network():
    req = request("192.0.2.2", X_Forwarded_For="198.51.100.7")
    assert client_ip(req) == "192.0.2.2"


def test_rightmost_untrusted_hop_wins():
    # the client may send any X-Forwarded-For; only what our proxies appended counts
    req = request("10.0.0.1", X_Forwarded_For="6.6.6.6, 198.51.100.7, 10.0.0.9")
    assert client_ip(req) == "198.51.100.7"


def test_spoofed_left_part_does_not_win_with_one_proxy():
    req = request("10.0.0.1", X_Forwarded_For="1.1.1.1,198.51.100.7")
    assert client_ip(req) == "198.51.100.7"


def test_all_hops_trusted_gives_the_leftmost():
    """A client inside the trusted network: the first address of the chain is the client."""
    req = request("10.0.0.1", X_Forwarded_For="10.20.30.40, 10.0.0.9")
    assert client_ip(req) == "10.20.30.40"


@pytest.mark.parametrize("header", ["not-an-ip", "198.51.100.7, garbage", "198.51.100.7:4711", "", " , ",
                                    "<script>", "1.2.3.4.5"])
def test_garbage_forwarded_for_is_ignored(header):
    assert client_ip(request("10.0.0.1", X_Forwarded_For=header)) == "10.0.0.1"


def test_garbage_left_of_a_good_hop_does_not_matter():
    assert client_ip(request("10.0.0.1", X_Forwarded_For="garbage, 198.51.100.7")) == "198.51.100.7"


def test_x_real_ip_from_a_trusted_proxy():
    assert client_ip(request("10.0.0.1", X_Real_IP=" 198.51.100.8 ")) == "198.51.100.8"


def test_x_real_ip_garbage_is_ignored():
    assert client_ip(request("10.0.0.1", X_Real_IP="unknown")) == "10.0.0.1"


def test_x_forwarded_for_takes_precedence_over_x_real_ip():
    req = request("10.0.0.1", X_Forwarded_For="198.51.100.7", X_Real_IP="198.51.100.8")
    assert client_ip(req) == "198.51.100.7"


def test_ipv6():
    assert client_ip(request("2001:db8::1", X_Forwarded_For="2a00:1450::5")) == "2a00:1450::5"
    assert client_ip(request("2a00:1450::5", X_Forwarded_For="198.51.100.7")) == "2a00:1450::5"


def test_missing_peer_address():
    req = request("10.0.0.1")
    req.remote_addr = None
    assert client_ip(req) == ""
