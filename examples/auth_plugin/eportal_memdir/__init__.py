"""eportal-memdir: an example auth plugin (entry point ``memdir = eportal_memdir``, group ``eportal``).

A stand-in for a directory server (LDAP, RADIUS, an IdP): its users are listed in the ini setting
``memdir.users``, one ``name:role:sha256-of-password`` per line. It shows the three things every
auth plugin does:

1. ``@hookimpl(trylast=True)`` on ``eportal_authenticate``: a real directory is a network round trip,
   so it is asked only for logins that no local plugin owns (local users, the admin among them, are
   decided first and still log in when the directory is down);
2. ``None`` for a name it does not know (the next plugin is asked), ``False`` for a wrong password
   (nobody else is asked), and the user's row for a good one;
3. that row comes from ``sync_external_user``: created on the first login with ``source="memdir"``
   and no local password, its role kept in line with the directory, every change audited.
"""
from __future__ import annotations

import hashlib
import hmac

from eportal_core.api import Check, Setting, hookimpl, sync_external_user

SOURCE = "memdir"
ROLES = ("admin", "readonly")


def parse_users(raw) -> dict[str, tuple[str, str]]:
    """``{name: (role, sha256 hex)}`` from the setting; ValueError(what is allowed) otherwise."""
    users: dict[str, tuple[str, str]] = {}
    for line in str(raw or "").splitlines():
        line = line.strip()
        if not line:
            continue
        name, _, rest = line.partition(":")
        role, _, digest = rest.partition(":")
        if not name or role not in ROLES or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError("one 'name:admin|readonly:<sha256 hex of the password>' per line")
        users[name] = (role, digest)
    return users


@hookimpl
def eportal_settings():
    # default {}: validated settings carry parsed values, and an empty directory is a dict too
    return [Setting("memdir.users", parse_users, {}, "The directory: name:role:sha256-of-password, one per line.",
                    secret=True)]


# trylast: a directory is a network round trip; local users must not wait for it (hookspecs.py)
@hookimpl(trylast=True)
def eportal_authenticate(request, login, password):
    entry = request.registry.settings["memdir.users"].get(login)
    if entry is None:
        return None  # not ours: let another plugin decide
    role, digest = entry
    typed = hashlib.sha256(password.encode("utf-8")).hexdigest()
    if not hmac.compare_digest(typed, digest):  # constant time, as any token comparison
        return False  # ours, and wrong: nobody else is asked
    return sync_external_user(request.dbsession, login, source=SOURCE, readonly=role == "readonly")


@hookimpl
def eportal_health_checks(registry):
    users = registry.settings["memdir.users"]
    return [Check("memdir", bool(users), f"{len(users)} directory user(s)" if users else "no directory users")]
