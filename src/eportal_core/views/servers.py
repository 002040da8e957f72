"""The server inventory in the console: ``/admin/kcserver/`` (filters, sorting, pages, remove
selected) and one server's page (its §4 record, its tags, remove). Filters, sorting and the
records are those of ``services.servers``, the same the REST API uses."""
from __future__ import annotations

from urllib.parse import parse_qsl

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.view import view_config

from ..permissions import Permission
from ..services import ServiceError
from ..services import keys as keys_service
from ..services import servers as servers_service
from ..services.servers import NO_KEY, SORTS, ServerFilter
from ..web.ui import plural, sentence
from . import server_presenters as present
from .server_presenters import ASCENDING_FIRST, DEFAULT_SORT, FILTER_FIELDS, HIDDEN_FILTERS, PER_PAGE

# --- the list ----------------------------------------------------------------------------------

def _filter_values(params) -> dict:
    return {name: params.get(name, "").strip() for name in FILTER_FIELDS + HIDDEN_FILTERS}


def _page_number(raw) -> int:
    try:
        return max(1, int(str(raw or "1").strip()))
    except ValueError:
        return 1


@view_config(route_name="kcserver_list", renderer="eportal_core:templates/servers/list.pt", request_method="GET")
def server_list(request):
    db = request.dbsession
    values = _filter_values(request.GET)
    sort = request.GET.get("sort", DEFAULT_SORT)
    if sort not in SORTS:
        sort = DEFAULT_SORT
    descending = request.GET.get("dir", "asc" if sort in ASCENDING_FIRST else "desc") != "asc"
    error, records, count, page = "", [], 0, 1
    try:
        flt = ServerFilter.from_params(values)
    except ServiceError as exc:
        error = sentence(str(exc))
        request.response.status_int = 400
    else:
        count = servers_service.count_servers(db, flt)
        page = min(_page_number(request.GET.get("page")), present.last_page(count))  # past the end: the last page
        records = servers_service.find_servers(db, flt, sort=sort, descending=descending, limit=PER_PAGE,
                                               offset=(page - 1) * PER_PAGE, with_count=False).rows
    key = values["key"]
    return present.server_list(
        request, present.Listing(values, sort, descending, records, count, page, error),
        feeds=keys_service.feed_names(db), key_names=keys_service.key_names(db, limit=500),
        key_exists=bool(key and key != NO_KEY and keys_service.get_key(db, key)))


def _back_to_list(request):
    """The list URL the form came from (only its known parameters, so no open redirect)."""
    allowed = set(FILTER_FIELDS + HIDDEN_FILTERS + ("sort", "dir", "page"))
    query = [(k, v) for k, v in parse_qsl(request.POST.get("back", ""))[:20] if k in allowed]
    return request.route_url("kcserver_list", _query=query)


@view_config(route_name="kcserver_delete_selected", request_method="POST", permission=Permission.MANAGE)
def server_delete_selected(request):
    ids = [i for i in request.POST.getall("server_id") if i][:servers_service.MAX_LIMIT]
    if not ids:
        request.session.flash("Select the servers to remove first.", "error")
        return HTTPSeeOther(_back_to_list(request))
    removed = servers_service.delete_servers(request.dbsession, ids, pm=request.registry.pm, request=request,
                                             actor=request.identity.username)
    request.session.flash(f"Removed {plural(removed, 'server')}.", "ok")
    return HTTPSeeOther(_back_to_list(request))


# --- one server ---------------------------------------------------------------------------------

def _server_or_404(request):
    server = servers_service.get_server(request.dbsession, request.matchdict["server_id"])
    if server is None:
        raise HTTPNotFound()
    return server


def _detail(request, server, **kw) -> dict:
    return present.server_detail(request, server, servers_service.records(request.dbsession, [server])[0], **kw)


@view_config(route_name="kcserver", renderer="eportal_core:templates/servers/detail.pt", request_method="GET")
def server_detail(request):
    return _detail(request, _server_or_404(request))


@view_config(route_name="kcserver_tags", renderer="eportal_core:templates/servers/detail.pt", request_method="POST",
             permission=Permission.MANAGE)
def server_tags(request):
    server = _server_or_404(request)
    text = request.POST.get("tags", "")
    try:
        with request.dbsession.begin_nested():
            servers_service.set_server_tags(request.dbsession, server, text, actor=request.identity.username,
                                            request=request)
    except ServiceError as exc:
        request.response.status_int = 400
        return _detail(request, server, tags_value=text, error=sentence(str(exc)))
    name = server.hostname or server.server_id
    request.session.flash(f"Tags of {name} saved." if server.tags else f"Tags of {name} removed.", "ok")
    return HTTPSeeOther(request.route_url("kcserver", server_id=server.server_id))


@view_config(route_name="kcserver_delete", request_method="POST", permission=Permission.MANAGE)
def server_delete(request):
    server_id = request.matchdict["server_id"]
    server = servers_service.get_server(request.dbsession, server_id)
    if server is None:
        request.session.flash(f"Server {server_id[:16]} does not exist (any more).", "error")
        return HTTPSeeOther(request.route_url("kcserver_list"))
    name = server.hostname or server.server_id
    servers_service.delete_servers(request.dbsession, [server_id], pm=request.registry.pm, request=request,
                                   actor=request.identity.username)
    request.session.flash(f"Server {name} removed.", "ok")
    return HTTPSeeOther(request.route_url("kcserver_list"))


def includeme(config):
    config.add_route("kcserver_list", "/admin/kcserver/")
    config.add_route("kcserver_delete_selected", "/admin/kcserver/remove-selected", request_method="POST")
    config.add_route("kcserver", "/admin/kcserver/{server_id}")
    config.add_route("kcserver_tags", "/admin/kcserver/{server_id}/tags")
    config.add_route("kcserver_delete", "/admin/kcserver/{server_id}/delete")
