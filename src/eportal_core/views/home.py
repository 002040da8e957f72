"""The start page: fleet check-in summary and the Key Inventory (the keys list of ePortal)."""
from urllib.parse import quote, urlencode

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from ..services import keys as keys_service
from ..services.key_counts import CHECKIN_WINDOW, KeyCountsCache, in_hours
from ..services.servers import NO_KEY, Age
from ..web.ui import plural
from .keys import delete_confirm


@view_config(route_name="admin_root", request_method="GET")
def admin_root(request):
    return HTTPSeeOther(request.route_url("home"))


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "–"


@view_config(route_name="home", renderer="eportal_core:templates/home.pt", request_method="GET")
def home(request):
    cache = request.registry["key_counts"]
    inv = keys_service.key_inventory(request.dbsession, cache.get(request.dbsession))
    servers_url = request.route_url("kcserver_list")

    def servers_link(**query):
        return f"{servers_url}?{urlencode(query)}"

    # per-key links from one generated prefix each: a route_url per key adds up with thousands of keys
    key_base = request.route_url("key_edit", key="-").removesuffix("-/edit")

    def key_url(name: str, action: str) -> str:
        return f"{key_base}{quote(name, safe='')}/{action}"

    # the window the counts were taken with: the tiles' words and the links to the servers they count
    window = cache.window
    recent = {"checkin_age": str(Age(window, within=True))}
    silent = {"checkin_age": str(Age(window, within=False))}
    hours = in_hours(window)
    feeds = [{"name": f.name, "key_count": f"{f.keys:,}", "servers": f"{f.servers:,}", "checked_in": f"{f.checked_in:,}",
              "share": _share(f.checked_in, f.servers), "servers_url": servers_link(feed=f.name),
              "checked_in_url": servers_link(feed=f.name, **recent)} for f in inv.feeds]
    keys = [{"key": r.key.key, "note": r.key.note, "feed": r.key.feed.name,
             "limit": f"{r.key.server_limit:,}", "unlimited": not r.key.server_limit,
             "servers": f"{r.servers:,}", "full": bool(r.key.server_limit) and r.servers >= r.key.server_limit,
             "servers_url": servers_link(key=r.key.key),
             "edit_url": key_url(r.key.key, "edit"), "delete_url": key_url(r.key.key, "delete"),
             "confirm": delete_confirm(r.key.key, r.servers)}
            for r in inv.keys]
    return {
        "title": "Keys",
        "summary": [
            {"label": "Servers", "value": f"{inv.total:,}", "note": "registered in all", "url": servers_url},
            {"label": f"Checked in · {hours} h", "value": f"{inv.checked_in:,}",
             "note": f"{_share(inv.checked_in, inv.total)} of all servers", "url": servers_link(**recent)},
            {"label": f"Silent · {hours} h", "value": f"{inv.total - inv.checked_in:,}",
             "note": f"no check-in in the past {hours} hours", "url": servers_link(**silent)},
            {"label": "Keys", "value": f"{len(inv.keys):,}", "note": "in " + plural(len([f for f in inv.feeds if f.keys]), "feed"),
             "url": None},
        ],
        "window_hours": hours,
        "total": f"{inv.total:,}", "checked_in": f"{inv.checked_in:,}", "share": _share(inv.checked_in, inv.total),
        "keys_count": f"{len(inv.keys):,}",
        "feeds": feeds,
        "no_key": {"servers": f"{inv.no_key:,}", "checked_in": f"{inv.no_key_checked_in:,}",
                   "share": _share(inv.no_key_checked_in, inv.no_key),
                   "servers_url": servers_link(key=NO_KEY),
                   "checked_in_url": servers_link(key=NO_KEY, **recent)} if inv.no_key else None,
        "keys": keys,
        # at fleet scale the counts come from a background refresh: say when they were counted
        "counted": None if inv.live else {
            "at": inv.counted_at.strftime("%H:%M:%S UTC"), "iso": inv.counted_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "every": f"{cache.refresh_seconds:g} s"},
    }


def includeme(config):
    config.add_route("admin_root", "/admin")
    config.add_route("home", "/admin/")
    registry, settings = config.registry, config.registry.settings
    # the start page's servers per key, counted in this process; the background refresh reads
    # through registry["db_read"] as it is at that moment (tests swap it for their connection)
    registry["key_counts"] = KeyCountsCache(
        lambda: registry["db_read"](), window=CHECKIN_WINDOW,
        live_count_under=settings["eportal.start_page.live_count_under"],
        refresh_seconds=settings["eportal.start_page.refresh_seconds"])
