"""Settings: where the ini lives, where data goes, and validation of every known key.

Each setting is declared once as a :class:`Setting` (core here, plugins through the
``eportal_settings`` hook); :func:`validate_settings` parses them all at start-up and stops
with a :class:`SettingsError` naming the key, the bad value and what is allowed.
"""
from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .plugins import RegistryError, make_plugin_manager, monitoring_formats, patch_source_types

CHECKOUT_INI = Path(__file__).resolve().parents[2] / "development.ini"
SYSTEM_INI = Path("/etc/eportal/eportal.ini")
COOKIE_NAME_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message is meant for the operator."""


def find_ini(explicit: str | None = None) -> Path:
    """The ini file every command reads: explicit, else $EPORTAL_INI, else the checkout's, else /etc."""
    chosen = explicit or os.environ.get("EPORTAL_INI")
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            raise SettingsError(f"ini file {path} does not exist (set EPORTAL_INI or --ini to an existing file)")
        return path.resolve()
    if CHECKOUT_INI.is_file():
        return CHECKOUT_INI
    if SYSTEM_INI.is_file():
        return SYSTEM_INI
    raise SettingsError(f"no ini file found: set EPORTAL_INI, or create {SYSTEM_INI}")


# --- parsers: each takes the raw string and returns the value or raises ValueError(allowed) ---

def as_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("one of true, false, yes, no, on, off, 1, 0")


def int_between(low: int, high: int) -> Callable[[Any], int]:
    def parse(raw: Any) -> int:
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise ValueError(f"a whole number from {low} to {high}") from None
        if not low <= value <= high:
            raise ValueError(f"a whole number from {low} to {high}")
        return value
    return parse


def as_list(raw: Any) -> list[str]:
    if isinstance(raw, (list, tuple)):
        return [str(x) for x in raw]
    return [part for part in str(raw).replace(",", " ").split() if part]


def as_networks(raw: Any) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    nets = []
    for part in as_list(raw):
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"IP addresses or networks separated by spaces (bad entry {part!r})") from None
    return nets


def one_of(*choices: str) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        value = str(raw).strip().lower()
        if value not in choices:
            raise ValueError("one of " + ", ".join(choices))
        return value
    return parse


def header_name(raw: Any) -> str:
    value = str(raw).strip()
    if not value or not all(c.isalnum() or c == "-" for c in value):
        raise ValueError("an HTTP header name made of letters, digits and '-'")
    return value


def cookie_name(raw: Any) -> str:
    """A cookie name: an RFC 6265 token (no spaces, separators or control characters)."""
    value = str(raw).strip()
    if not COOKIE_NAME_RE.match(value):
        raise ValueError("a cookie name of 1-64 letters, digits and !#$%&'*+-.^_`|~")
    return value


def sqlalchemy_url(raw: Any) -> str:
    value = str(raw).strip()
    if not (value.startswith("sqlite:///") or value.startswith("postgresql+psycopg://")):
        raise ValueError("a sqlite:///PATH or postgresql+psycopg://USER:PW@HOST:PORT/DB URL")
    return value


def as_str(raw: Any) -> str:
    return str(raw).strip()


def proxy_url(raw: Any) -> str:
    """``http://[USER:PW@]HOST:PORT`` (the form http_proxy takes); a bare ``HOST:PORT`` means http://."""
    from urllib.parse import urlsplit
    value = str(raw).strip()
    if value and "://" not in value:
        value = "http://" + value
    if value:
        parts = urlsplit(value)
        try:
            parts.port  # noqa: B018  (raises on a malformed port)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("a proxy URL like http://proxy.example.com:3128")
    return value


@dataclass(frozen=True)
class Setting:
    """One ini key: its parser, default and one line of documentation."""

    key: str
    parse: Callable[[Any], Any]
    default: Any
    doc: str = ""
    #: a value that names a secret is never printed back in an error
    secret: bool = False


CORE_SETTINGS = [
    Setting("eportal.data_dir", as_str, "/var/lib/eportal",
            "Folder for the SQLite database, patches, logs and config/ ($EPORTAL_DATA_DIR overrides)."),
    Setting("sqlalchemy.url", sqlalchemy_url, None,
            "Database URL; default sqlite:///<data_dir>/eportal.sqlite.", secret=True),
    Setting("eportal.plugins.disabled", as_list, [], "Plugin names not to load."),
    Setting("eportal.session.idle_minutes", int_between(1, 1440), 30, "Console session idle timeout."),
    Setting("eportal.session.max_hours", int_between(1, 720), 12, "Console session absolute lifetime."),
    Setting("eportal.session.cookie_name", cookie_name, "eportal_session",
            "Name of the console's session cookie (two portals on one host name need two names)."),
    Setting("eportal.secure_cookies", one_of("auto", "true", "false"), "auto",
            "Mark cookies Secure: auto = when the request came over HTTPS."),
    Setting("eportal.login.max_failures_per_user", int_between(1, 1000), 5,
            "Failed logins per user name within the lockout window before it is refused."),
    Setting("eportal.login.max_failures_per_ip", int_between(1, 10000), 20,
            "Failed logins per client IP within the lockout window before it is refused."),
    Setting("eportal.login.lockout_minutes", int_between(1, 1440), 15, "Failed-login window and lockout."),
    Setting("eportal.scheduler", as_bool, True, "Run scheduled jobs in this process (one leader per site)."),
    Setting("eportal.scheduler.lease_seconds", int_between(10, 3600), 60,
            "How long the job leader's lease lasts before another process may take over."),
    Setting("eportal.checkins.flush_seconds", int_between(1, 300), 1,
            "How often agents' check-ins, kept in memory, are written to the database (and on shutdown)."),
    Setting("eportal.agent_directory.in_memory", one_of("auto", "true", "false"), "auto",
            "Keep every server's id in memory so check-ins need no database round trip (~150 MiB per "
            "process at a million servers); auto = on for PostgreSQL."),
    Setting("eportal.start_page.live_count_under", int_between(0, 1_000_000_000), 100_000,
            "Below this many servers the start page counts servers per key for each view; from it on "
            "it shows counts refreshed in the background (counting a million servers takes ~0.1 s)."),
    Setting("eportal.start_page.refresh_seconds", int_between(5, 3600), 30,
            "How often the start page's counts are refreshed in the background at fleet scale."),
    Setting("eportal.trusted_proxies", as_networks, [],
            "Proxies whose X-Forwarded-For / X-Real-IP are believed."),
    Setting("eportal.api_key_header", header_name, "X-Api-Key", "Header that carries REST API tokens."),
    Setting("eportal.password_min_length", int_between(8, 128), 10, "Shortest accepted local password."),
    Setting("eportal.anonymous_patch_downloads", as_bool, False,
            "Serve patch files (kpatch.bin and the like) to callers without a server identity; "
            "latest.v2, version and kpatch.info are always public."),
    Setting("eportal.http_proxy", proxy_url, "",
            "Proxy for outgoing http:// requests (patch sources); empty = the environment's http_proxy.",
            secret=True),
    Setting("eportal.https_proxy", proxy_url, "",
            "Proxy for outgoing https:// requests (patch sources); empty = the environment's https_proxy.",
            secret=True),
]


@dataclass
class ValidatedSettings:
    values: dict[str, Any] = field(default_factory=dict)


def validate_settings(raw: dict[str, Any], specs: list[Setting], owned_prefixes: tuple[str, ...] = ("eportal.",)) -> dict[str, Any]:
    """Return ``raw`` with every declared key parsed (defaults filled in).

    Unknown keys inside an owned namespace are refused, since a typo there silently
    falls back to a default.
    """
    settings = dict(raw)
    known = {spec.key for spec in specs}
    for key in sorted(raw):
        if key.startswith(owned_prefixes) and key not in known:
            close = sorted(k for k in known if k.split(".")[0] == key.split(".")[0])
            raise SettingsError(f"unknown setting {key!r}; known settings: {', '.join(close)}")
    for spec in specs:
        value = raw.get(spec.key)
        if value is None or (isinstance(value, str) and value.strip() == ""):
            settings[spec.key] = spec.default
            continue
        try:
            settings[spec.key] = spec.parse(value)
        except ValueError as exc:
            shown = "(hidden)" if spec.secret else repr(value)
            raise SettingsError(f"setting {spec.key} = {shown} is not valid: expected {exc}") from None
    return settings


def resolve_paths(settings: dict[str, Any], ini_dir: Path | None) -> dict[str, Any]:
    """Apply $EPORTAL_DATA_DIR, make data_dir absolute, default the database URL into it."""
    env_dir = os.environ.get("EPORTAL_DATA_DIR")
    data_dir = Path(env_dir or settings["eportal.data_dir"]).expanduser()
    if not data_dir.is_absolute():
        data_dir = (ini_dir or Path.cwd()) / data_dir
    settings["eportal.data_dir"] = str(data_dir.resolve())
    if not settings.get("sqlalchemy.url"):
        settings["sqlalchemy.url"] = f"sqlite:///{data_dir.resolve() / 'eportal.sqlite'}"
    return settings


def ensure_data_dir(settings: dict[str, Any]) -> Path:
    """Create the data dir layout (database, patches, logs, config) with private permissions."""
    root = Path(settings["eportal.data_dir"])
    try:
        for sub in ("", "patches", "logs", "config"):
            (root / sub).mkdir(mode=0o750, parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(f"cannot create data dir {root}: {exc.strerror} (set eportal.data_dir or EPORTAL_DATA_DIR)") from None
    return root


# --- the whole start-up: plugins, then every setting they and the core declare ---------------------
def load_settings(raw: dict[str, Any], ini_dir: str | Path | None = None, *, extra_plugins: dict | None = None,
                  load_entrypoints: bool = True):
    """Return ``(settings, pm)``: plugins loaded (minus the disabled ones), every setting validated.
    ``extra_plugins`` and ``load_entrypoints`` go to :func:`make_plugin_manager`."""
    try:
        disabled = as_list(raw.get("eportal.plugins.disabled", ""))
    except ValueError:
        disabled = []
    pm = make_plugin_manager(disabled, extra=extra_plugins, load_entrypoints=load_entrypoints)
    specs = list(CORE_SETTINGS)
    owned = ["eportal."]
    for contributed in pm.hook.eportal_settings():
        for spec in contributed or []:
            prefix = spec.key.split(".")[0] + "."
            if prefix not in owned:
                owned.append(prefix)
            specs.append(spec)
    keys = [s.key for s in specs]
    if len(keys) != len(set(keys)):
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        raise SettingsError(f"settings declared twice by plugins: {', '.join(dupes)}")
    check_named_contributions(pm)
    settings = validate_settings(raw, specs, tuple(owned))
    settings = resolve_paths(settings, Path(ini_dir) if ini_dir else None)
    settings["eportal.plugins.disabled"] = disabled
    return settings, pm


def check_named_contributions(pm) -> None:
    """Two plugins offering the same patch source type or monitoring format stop start-up (not the
    first poll or request that would have picked one of them by chance)."""
    for collect in (patch_source_types, monitoring_formats):
        try:
            collect(pm)
        except RegistryError as exc:
            raise SettingsError(f"{exc}: disable one of them in eportal.plugins.disabled") from None
