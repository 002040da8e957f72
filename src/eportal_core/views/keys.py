"""Create, edit and remove registration keys; the rules are those of ``services.keys``.

The form's submit buttons say where to go after saving (the ePortal key form): Save -> the key
list, Save and Add Another -> a fresh create form, Save and Continue Editing -> the key's edit page.
Cancel is a plain link back to the list, so nothing is posted.
"""
from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.view import view_config

from ..models import MAIN_FEED
from ..permissions import Permission
from ..services import ServiceError
from ..services import keys as keys_service
from ..web.ui import plural, sentence

FIELDS = ("key", "note", "server_limit", "feed")
NEXT_ACTIONS = ("save", "add_another", "continue")


def delete_confirm(name: str, servers: int) -> str:
    """What removing a key asks first (its page and the start page's key list)."""
    return f"Remove key {name} and its {plural(servers, 'server')}?"


def _posted(request) -> dict:
    return {name: request.POST.get(name, "").strip() for name in FIELDS}


def _after_save(request, name: str):
    action = request.POST.get("action", "save")
    if action == "add_another":
        return HTTPSeeOther(request.route_url("key_add"))
    if action == "continue":
        return HTTPSeeOther(request.route_url("key_edit", key=name))
    return HTTPSeeOther(request.route_url("home"))


def _page(request, *, form: dict, error: ServiceError | None = None, key=None, servers: int = 0) -> dict:
    return {
        "title": f"Edit key {key.key}" if key else "Create key",
        "editing": key is not None,
        "current": key.key if key else "",
        "form": form,
        "error": sentence(str(error)) if error else "",
        # the form field the refusal is about, so the form can mark it
        "error_field": error.field if error else "",
        "feeds": keys_service.feed_names(request.dbsession),
        "action_url": request.route_url("key_edit", key=key.key) if key else request.route_url("key_add"),
        "servers": plural(servers, "server"),
        "servers_url": request.route_url("kcserver_list", _query={"key": key.key}) if key else "",
        "delete_url": request.route_url("key_delete", key=key.key) if key else "",
        "confirm": delete_confirm(key.key, servers) if key else "",
        "created": key.created.strftime("%Y-%m-%d %H:%M UTC") if key and key.created else "",
    }


@view_config(route_name="key_add", renderer="eportal_core:templates/keys/form.pt", request_method=("GET", "POST"),
             permission=Permission.MANAGE)
def key_add(request):
    form = {"key": "", "note": "", "server_limit": "0", "feed": MAIN_FEED}
    error = None
    if request.method == "POST":
        form = _posted(request)
        try:
            key = keys_service.create_key(request.dbsession, form["key"], note=form["note"],
                                          server_limit=form["server_limit"], feed=form["feed"],
                                          actor=request.identity.username)
        except ServiceError as exc:
            error = exc
            request.response.status_int = 400
        else:
            request.session.flash(f"Key '{key.key}' created.", "ok")
            return _after_save(request, key.key)
    return _page(request, form=form, error=error)


@view_config(route_name="key_edit", renderer="eportal_core:templates/keys/form.pt", request_method=("GET", "POST"),
             permission=Permission.MANAGE)
def key_edit(request):
    db = request.dbsession
    key = keys_service.get_key(db, request.matchdict["key"])
    if key is None:
        raise HTTPNotFound()
    form = {"key": key.key, "note": key.note, "server_limit": str(key.server_limit), "feed": key.feed.name}
    error = None
    if request.method == "POST":
        form = _posted(request)
        old_name = key.key
        try:
            if not form["key"]:
                raise ServiceError("a key cannot be empty when editing: keep its name or type a new one", field="key")
            with db.begin_nested():  # a refusal undoes all: update_key may rename before a later field fails
                key = keys_service.update_key(db, old_name, new_name=form["key"], note=form["note"],
                                              server_limit=form["server_limit"], feed=form["feed"],
                                              actor=request.identity.username)
        except ServiceError as exc:
            error = exc
            request.response.status_int = 400
        else:
            renamed = f" (was '{old_name}')" if key.key != old_name else ""
            request.session.flash(f"Key '{key.key}' saved{renamed}.", "ok")
            return _after_save(request, key.key)
    return _page(request, form=form, error=error, key=key, servers=keys_service.count_servers(db, key))


@view_config(route_name="key_delete", request_method="POST", permission=Permission.MANAGE)
def key_delete(request):
    name = request.matchdict["key"]
    try:
        removed = keys_service.delete_key(request.dbsession, name, actor=request.identity.username,
                                          pm=request.registry.pm, request=request)
    except ServiceError as exc:
        request.session.flash(sentence(str(exc)), "error")
    else:
        request.session.flash(f"Key '{name}' removed, with its {plural(removed, 'server')}.", "ok")
    return HTTPSeeOther(request.route_url("home"))


def includeme(config):
    config.add_route("key_add", "/admin/keys/add")
    config.add_route("key_edit", "/admin/keys/{key}/edit")
    config.add_route("key_delete", "/admin/keys/{key}/delete")
