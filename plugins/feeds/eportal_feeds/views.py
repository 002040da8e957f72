"""Settings → Feeds: list, create, edit and delete feeds; the rules are those of ``services.feeds``.

``main`` is listed first and can be edited (auto update, delay) but neither renamed nor deleted.
Deleting a feed asks first, saying how many keys will move to ``main``.
"""
from __future__ import annotations

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.view import view_config

from eportal_core.api import MAIN_FEED, Permission, ServiceError, plural, sentence
from eportal_core.api import feeds as feeds_service

FORM = "eportal_feeds:templates/form.pt"


def delay_text(auto: bool, hours: int) -> str:
    """The Deploy after cell: only auto feeds deploy on their own, so the others show a dash."""
    if not auto:
        return "\u2013"
    return "at once" if hours == 0 else f"after {plural(hours, 'hour')}"


def delete_confirm(name: str, keys: int) -> str:
    moves = f"its {plural(keys, 'key')} will move to the {MAIN_FEED} feed" if keys else "no keys use it"
    return f"Delete feed '{name}'? {sentence(moves)}"


def _row(request, summary) -> dict:
    feed = summary.feed
    return {
        "name": feed.name,
        "is_main": feed.name == MAIN_FEED,
        "auto": feed.auto,
        "deploy_after": delay_text(feed.auto, feed.deploy_after),
        "key_count": f"{summary.keys:,}",
        "enabled": f"{summary.enabled:,}",
        "latest": summary.latest or "",
        "edit_url": request.route_url("feed_edit", name=feed.name),
        "delete_url": request.route_url("feed_delete", name=feed.name),
        "confirm": delete_confirm(feed.name, summary.keys),
    }


@view_config(route_name="feeds", renderer="eportal_feeds:templates/list.pt", permission=Permission.VIEW,
             request_method="GET")
def feed_list(request):
    rows = [_row(request, s) for s in feeds_service.list_feeds(request.dbsession)]
    return {"title": "Feeds", "rows": rows}


def _posted(request) -> dict:
    return {"name": request.POST.get("name", "").strip(), "auto": bool(request.POST.get("auto")),
            "deploy_after": request.POST.get("deploy_after", "").strip()}


def _page(request, *, form: dict, error: ServiceError | None = None, feed=None, keys: int = 0) -> dict:
    return {
        "title": f"Edit feed {feed.name}" if feed else "Create feed",
        "editing": feed is not None,
        "is_main": feed is not None and feed.name == MAIN_FEED,
        "current": feed.name if feed else "",
        "form": form,
        "error": sentence(str(error)) if error else "",
        # the form field the refusal is about, so the form can mark it
        "error_field": error.field if error else "",
        "action_url": request.route_url("feed_edit", name=feed.name) if feed else request.route_url("feed_add"),
        "keys": plural(keys, "key"),
        "delete_url": request.route_url("feed_delete", name=feed.name) if feed else "",
        "confirm": delete_confirm(feed.name, keys) if feed else "",
    }


@view_config(route_name="feed_add", renderer=FORM, request_method=("GET", "POST"), permission=Permission.MANAGE)
def feed_add(request):
    form = {"name": "", "auto": False, "deploy_after": "0"}
    error = None
    if request.method == "POST":
        form = _posted(request)
        try:
            feed = feeds_service.create_feed(request.dbsession, form["name"], auto=form["auto"],
                                             deploy_after=form["deploy_after"], actor=request.identity.username)
        except ServiceError as exc:
            error = exc
            request.response.status_int = 400
        else:
            request.session.flash(f"Feed '{feed.name}' created.", "ok")
            return HTTPSeeOther(request.route_url("feeds"))
    return _page(request, form=form, error=error)


@view_config(route_name="feed_edit", renderer=FORM, request_method=("GET", "POST"), permission=Permission.MANAGE)
def feed_edit(request):
    db = request.dbsession
    feed = feeds_service.get_feed(db, request.matchdict["name"])
    if feed is None:
        raise HTTPNotFound()
    form = {"name": feed.name, "auto": feed.auto, "deploy_after": str(feed.deploy_after)}
    error = None
    if request.method == "POST":
        form = _posted(request)
        if feed.name == MAIN_FEED and not form["name"]:
            form["name"] = MAIN_FEED  # its name field is read-only; a missing one means "unchanged"
        old_name = feed.name
        try:
            if not form["name"]:
                raise ServiceError("a feed needs a name", field="name")
            with db.begin_nested():  # a refusal undoes all: a rename may happen before a later field fails
                feed = feeds_service.update_feed(db, old_name, new_name=form["name"], auto=form["auto"],
                                                 deploy_after=form["deploy_after"], actor=request.identity.username)
        except ServiceError as exc:
            error = exc
            request.response.status_int = 400
        else:
            renamed = f" (was '{old_name}')" if feed.name != old_name else ""
            request.session.flash(f"Feed '{feed.name}' saved{renamed}.", "ok")
            return HTTPSeeOther(request.route_url("feeds"))
    return _page(request, form=form, error=error, feed=feed, keys=feeds_service.count_keys(db, feed))


@view_config(route_name="feed_delete", request_method="POST", permission=Permission.MANAGE)
def feed_delete(request):
    name = request.matchdict["name"]
    try:
        moved = feeds_service.delete_feed(request.dbsession, name, actor=request.identity.username)
    except ServiceError as exc:
        request.session.flash(sentence(str(exc)), "error")
    else:
        moved_text = f"its {plural(moved, 'key')} moved to {MAIN_FEED}" if moved else "no keys used it"
        request.session.flash(f"Feed '{name}' deleted; {moved_text}.", "ok")
    return HTTPSeeOther(request.route_url("feeds"))


def includeme(config):
    config.add_route("feeds", "/admin/feeds/")
    config.add_route("feed_add", "/admin/feeds/add")
    config.add_route("feed_edit", "/admin/feeds/{name}/edit")
    config.add_route("feed_delete", "/admin/feeds/{name}/delete")
    config.scan(__name__)
