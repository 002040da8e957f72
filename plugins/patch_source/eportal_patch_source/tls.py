"""TLS for the ``http`` source: the ``patch_source.ca_file`` setting, the client context built from
it, and certificate failures said in one sentence.

A ``ca_file`` replaces the system's CAs (like ``curl --cacert``): a source behind a private CA is
trusted for exactly that CA. The file is checked at start-up (settings validation: a path that is
missing, unreadable or holds no certificate stops the start with the key named) and again when a
source is made, since it may have been removed or replaced since; then the poll records the error.
Certificate failures are not retried: the next try would fail the same way.
"""
from __future__ import annotations

import ssl
from pathlib import Path
from urllib.parse import urlsplit

from eportal_core.api import SourceError

CA_SETTING = "patch_source.ca_file"
#: OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
_NAME_MISMATCH = {62, 64}
#: X509_V_ERR_CERT_NOT_YET_VALID, X509_V_ERR_CERT_HAS_EXPIRED
_EXPIRED = {9, 10}


def _load(path: str) -> ssl.SSLContext:
    """A client context trusting the CAs in ``path``; OSError or ssl.SSLError when it cannot."""
    return ssl.create_default_context(cafile=path)


def _problem(path: str, exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"{path} holds no PEM certificate OpenSSL can read ({exc.reason or exc})"
    if isinstance(exc, FileNotFoundError):
        return f"{path} does not exist"
    if isinstance(exc, PermissionError):
        return f"{path} cannot be read by this process"
    return f"{path}: {getattr(exc, 'strerror', None) or exc}"


def ca_file(raw) -> str:
    """Settings parser of ``patch_source.ca_file``: empty (the system's CAs), or an absolute path to
    a readable PEM file of CA certificates; ValueError saying what is expected otherwise."""
    value = str(raw).strip()
    if not value:
        return ""
    if not Path(value).is_absolute():
        raise ValueError(f"an absolute path to a PEM file of CA certificates, not the relative {value!r}")
    if Path(value).is_dir():
        raise ValueError(f"a PEM file of CA certificates ({value} is a folder)")
    try:
        _load(value)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"a readable PEM file of CA certificates ({_problem(value, exc)})") from None
    return value


def client_context(settings: dict) -> ssl.SSLContext:
    """The context of every https:// request (and of a TLS proxy): certificates and host names are
    always verified. SourceError when ``ca_file`` cannot be used (any more)."""
    path = settings.get(CA_SETTING) or ""
    if not path:
        return ssl.create_default_context()
    try:
        return _load(path)
    except (OSError, ssl.SSLError) as exc:
        raise SourceError(f"cannot use {CA_SETTING}: {_problem(path, exc)}") from None


def certificate_error(exc: BaseException, url: str, settings: dict, proxy: str = "") -> SourceError | None:
    """The one-line SourceError for a certificate the client refused (None for any other error).
    ``proxy``: the proxy the request went through; for an http:// URL only its certificate was checked."""
    if not isinstance(exc, ssl.SSLCertVerificationError):
        return None
    detail = str(exc.verify_message or exc.reason or exc).rstrip(".")
    if url.startswith("http:") and proxy:
        whose = f"the TLS certificate of the proxy {urlsplit(proxy).hostname}"
    else:
        whose = f"the TLS certificate of {urlsplit(url).hostname or url}"
    path = settings.get(CA_SETTING) or ""
    if exc.verify_code in _NAME_MISMATCH:
        text = f"{whose} is not valid for that name ({detail}): put a host name the certificate names in the URL"
    elif exc.verify_code in _EXPIRED:
        text = f"{whose} is not valid now ({detail})"
    elif path:
        text = (f"{whose} is not signed by the CA in {CA_SETTING} {path} ({detail}): is that the CA of "
                "the source's certificate?")
    else:
        text = f"{whose} is not trusted ({detail}): set {CA_SETTING} to the PEM file of the CA that signed it"
    return SourceError(f"cannot reach {url}: {text}")
