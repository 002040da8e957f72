"""What every console page needs: the layout macro, navigation from the hook, flash messages."""
from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata

from markupsafe import Markup, escape
from pyramid.events import BeforeRender, subscriber
from pyramid.renderers import get_renderer

from ..permissions import Permission

_VERSION = metadata.version("eportal-core")

#: the navigation group of the site's settings pages (Feeds, Users, API tokens, ...)
SETTINGS = "Settings"


@dataclass(frozen=True)
class NavItem:
    title: str
    route: str
    order: int = 100
    permission: str = Permission.VIEW
    #: other route names under which this entry shows as the current one
    also_for: tuple[str, ...] = ()
    #: the title of a menu in the bar (e.g. ``"Settings"``) that holds this entry; ``None``: a top-level entry
    group: str | None = None


def plural(n: int, word: str) -> str:
    """``1 server``, ``2,000 servers``: counts in page text (regular plurals only)."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def sentence(message: str) -> str:
    """A service's one-line message as page text: ``feed 'x' does not exist`` -> ``Feed 'x' does not exist.``"""
    message = message.strip()
    return message[:1].upper() + message[1:] + ("" if message.endswith((".", "!", "?")) else ".")


def navigation(request) -> list[dict]:
    """The bar's entries the user may open, sorted by (order, title).

    Entries of one ``group`` become a single item (``entries`` non-empty) where the group's first
    visible entry would stand; it is ``current`` when one of its entries is. A group whose
    entries are all hidden is left out.
    """
    items: list[NavItem] = []
    for contributed in request.registry.pm.hook.eportal_navigation(request=request):
        items.extend(contributed or [])
    current = request.matched_route.name if request.matched_route else ""
    out: list[dict] = []
    groups: dict[str, dict] = {}
    for item in sorted(items, key=lambda i: (i.order, i.title)):
        if not request.has_permission(item.permission):
            continue
        entry = {"title": item.title, "url": request.route_url(item.route), "entries": [],
                 "current": current == item.route or current in item.also_for}
        if not item.group:
            out.append(entry)
            continue
        group = groups.get(item.group)
        if group is None:
            group = groups[item.group] = {"title": item.group, "url": None, "entries": [], "current": False,
                                          "id": _group_id(item.group, groups.values())}
            out.append(group)
        group["entries"].append(entry)
        group["current"] = group["current"] or entry["current"]
    return out


def _group_id(title: str, taken) -> str:
    """An HTML id for a group's menu: ``nav-settings`` (unique on the page)."""
    base = "nav-" + (re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "group")
    used = {g.get("id") for g in taken}
    ident, n = base, 1
    while ident in used:
        n += 1
        ident = f"{base}-{n}"
    return ident


def panels(request, slot: str, context=None) -> Markup:
    """What plugins put in ``slot``: ``Markup`` as the plugin built it, any other text escaped (a plain
    string holding a hostname or a key must never become HTML)."""
    parts = request.registry.pm.hook.eportal_ui_panels(request=request, slot=slot, context=context)
    return Markup("").join(escape(p) for p in parts if p)


@subscriber(BeforeRender)
def add_layout(event):
    """Templates get ``layout`` (the macro), and ``page`` with navigation, user and messages."""
    request = event.get("request")
    if request is None or event.rendering_val is None or not isinstance(event.rendering_val, dict):
        return
    renderer_name = (event.get("renderer_name") or "")
    if not renderer_name.endswith(".pt"):
        return
    event["layout"] = get_renderer("eportal_core:templates/layout.pt").implementation()
    identity = request.identity
    session_ok = identity is not None and identity.via == "session"
    event["page"] = {
        "user": identity,
        "nav": navigation(request) if identity else [],
        "flash_ok": request.session.pop_flash("ok") if session_ok else [],
        "flash_error": request.session.pop_flash("error") if session_ok else [],
        "flash_info": request.session.pop_flash("info") if session_ok else [],
        "version": _VERSION,
        "csrf_token": request.session.get_csrf_token() if session_ok else "",
        "can_manage": request.has_permission(Permission.MANAGE) if identity else False,
        "panels": lambda slot, context=None: panels(request, slot, context),
    }


def includeme(config):
    config.scan(__name__)
