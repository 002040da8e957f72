"""The agent side of the fleet: registration under a key's limit, unregistration, the agent's
identity on patch requests, and validation of what agents report (protocol.md §2, §4)."""
from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Key, Server, utcnow
from . import ServiceError, audit
from .events import notify
from .servers import delete_servers_where
from .tags import apply_tags, parse_tags

SERVER_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{15}$")
KERNEL_ID_RE = re.compile(r"^[0-9a-f]{40}$")

# registration answers (protocol.md §2)
REGISTERED, KEY_DISABLED, UNKNOWN_KEY, LIMIT_REACHED = 0, 1, 2, 3

#: the §4 fields an agent may report, with their longest accepted length
TEXT_FIELDS = {"hostname": 255, "euname": 255, "release": 255, "version": 255, "virt": 64,
               "kcare_version": 64, "distro": 64, "distro_version": 64, "machine": 64, "processor": 128}
PATCH_TYPES = ("default", "extra", "free")


def new_server_id() -> str:
    return secrets.choice(string.ascii_letters) + "".join(
        secrets.choice(string.ascii_letters + string.digits) for _ in range(15))


def valid_server_id(value) -> bool:
    return isinstance(value, str) and bool(SERVER_ID_RE.match(value))


def parse_info(params) -> dict:
    """Validated §4 fields from a check-in (form, JSON or the ``info`` blob); unknown keys are ignored."""
    info: dict = {}
    for name, maxlen in TEXT_FIELDS.items():
        value = params.get(name)
        if value is None:
            continue
        if not isinstance(value, (str, int, float)):
            raise ServiceError(f"{name} must be text")
        value = str(value).strip()
        if len(value) > maxlen:
            raise ServiceError(f"{name} is too long (at most {maxlen} characters)")
        if _CONTROL_CHARS.search(value):
            raise ServiceError(f"{name} must not contain control characters")
        if _has_surrogates(value):  # only a JSON "\ud800" makes one; no database can store it
            raise ServiceError(f"{name} must be valid Unicode text")
        info[name] = value
    kernel_id = params.get("kernel_id")
    if kernel_id is not None:
        if not isinstance(kernel_id, str) or not KERNEL_ID_RE.match(kernel_id.strip().lower()):
            raise ServiceError("kernel_id must be 40 hexadecimal digits (sha1 of /proc/version)")
        info["kernel_id"] = kernel_id.strip().lower()
    for name, high in (("patch_level", 10**6), ("uptime", 10**11)):
        value = params.get(name)
        if value is None or value == "":
            continue
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ServiceError(f"{name} must be a whole number") from None
        if not (-1 if name == "patch_level" else 0) <= number <= high:
            raise ServiceError(f"{name} is out of range")
        info[name] = None if number < 0 else number
    patch_type = params.get("patch_type")
    if patch_type is not None and patch_type != "":
        if patch_type not in PATCH_TYPES:
            raise ServiceError(f"patch_type must be one of {', '.join(PATCH_TYPES)}")
        info["patch_type"] = patch_type
    tags = params.get("tags", params.get("tag"))
    if tags is not None:
        if not isinstance(tags, str):
            raise ServiceError("tags must be text like 'env:prod;ubuntu'")
        if _has_surrogates(tags):
            raise ServiceError("tags must be valid Unicode text")
        parse_tags(tags)  # validated now; stored by the caller
        info["tags"] = tags
    return info


_CONTROL_CHARS = re.compile("[\x00-\x1f]")
_SURROGATES = re.compile("[\ud800-\udfff]")


def _has_surrogates(text: str) -> bool:
    return _SURROGATES.search(text) is not None


@dataclass(frozen=True)
class Registration:
    code: int
    server: Server | None = None


def register(db: Session, key_name: str, *, hostname: str = "", ip: str = "", info: dict | None = None,
             pm=None, request=None, actor: str = "agent") -> Registration:
    """Register a server under ``key_name``, never beyond the key's server limit.

    The key row is locked first (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite the
    ``BEGIN IMMEDIATE`` transaction already serializes writers), so concurrent registrations
    count servers one after another.
    """
    if not key_name or len(key_name) > 64:
        return Registration(UNKNOWN_KEY)
    key = db.scalar(select(Key).where(Key.key == key_name).with_for_update(of=Key))
    if key is None:
        return Registration(UNKNOWN_KEY)
    if not key.enabled:
        return Registration(KEY_DISABLED)
    if key.server_limit:
        used = db.scalar(select(func.count()).select_from(Server).where(Server.key_id == key.id)) or 0
        if used >= key.server_limit:
            return Registration(LIMIT_REACHED)
    info = dict(info or {})
    tags = info.pop("tags", None)
    if hostname:
        info["hostname"] = hostname
    now = utcnow()
    server = Server(server_id=new_server_id(), key_id=key.id, ip=ip, registered=now, checkin=now, **info)
    db.add(server)
    db.flush()
    if tags is not None:
        apply_tags(db, server, tags)
    audit.record(db, actor, "server.register", server.server_id[:4] + "…", f"key={key.key} host={server.hostname}", ip=ip)
    if pm is not None:
        notify(pm, "server_registered", request=request, server=server)
    return Registration(REGISTERED, server)


def unregister(db: Session, server_id: str, *, pm=None, request=None) -> bool:
    if not valid_server_id(server_id):
        return False
    return delete_servers_where(db, Server.server_id == server_id, pm=pm, request=request) > 0


def unregister_by_key(db: Session, key_name: str, ip: str, *, pm=None, request=None) -> int:
    key = db.scalar(select(Key).where(Key.key == key_name))
    if key is None or not ip:
        return 0
    return delete_servers_where(db, Server.key_id == key.id, Server.ip == ip, pm=pm, request=request)
