"""REST API for the server inventory (protocol.md §6): list and count with the §6 filters,
register, delete by name/address/id, delete by check-in age, set tags. The rules themselves live
in services.servers, services.agents and services.tags."""
from __future__ import annotations

from datetime import timedelta

from pyramid.view import view_config

from ..models import Server
from ..permissions import Permission
from ..services import ServiceError, agents
from ..services.feeds import feed_by_name
from ..services.keys import require_key
from ..services.servers import (
    NO_KEY,
    Age,
    ServerFilter,
    count_servers,
    delete_servers_where,
    find_servers,
    get_server,
    parse_paging,
    set_server_tags,
    short_id,
)
from ..web.rest import ApiError, actor, api_guard, api_params, bool_param, json_response, text_param

#: days; a larger age would reach before any server existed
MAX_DELETE_AGE = 100000


def _filter(request, params) -> ServerFilter:
    flt = ServerFilter.from_params(params)
    # naming a key or feed that does not exist is a typo, not an empty fleet
    try:
        if flt.key is not None and flt.key != NO_KEY:
            require_key(request.dbsession, flt.key)
        if flt.feed is not None:
            feed_by_name(request.dbsession, flt.feed)
    except ServiceError as exc:
        raise ApiError(f"unknown-{exc.field}", str(exc)) from None
    return flt


# token and Basic clients carry no session, hence no CSRF token (api_guard checks session callers)
@view_config(route_name="api_servers", request_method="GET", permission=Permission.VIEW,
             require_csrf=False, decorator=api_guard)
def list_servers(request):
    params = api_params(request)
    flt = _filter(request, params)
    limit, offset = parse_paging(params)
    if bool_param(params, "only_count"):
        return json_response({"count": count_servers(request.dbsession, flt), "limit": limit, "offset": offset,
                              "result": []})
    # oldest registration first: a page stays put while new servers register
    page = find_servers(request.dbsession, flt, sort="id", descending=False, limit=limit, offset=offset)
    return json_response({"count": page.count, "limit": page.limit, "offset": page.offset, "result": page.rows})


# token and Basic clients carry no session, hence no CSRF token (api_guard checks session callers)
@view_config(route_name="api_servers", request_method="DELETE", permission=Permission.MANAGE,
             require_csrf=False, decorator=api_guard)
def delete_inactive_servers(request):
    params = api_params(request)
    raw = text_param(params, "checkin_age", maxlen=20, required=True)
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DELETE_AGE:
        raise ApiError("bad-param", f"checkin_age must be a whole number of days from 1 to {MAX_DELETE_AGE}")
    days = int(raw)
    flt = ServerFilter(checkin_age=Age(timedelta(days=days), within=False))
    removed = delete_servers_where(request.dbsession, *flt.conditions(request.dbsession), pm=request.registry.pm,
                                   request=request, actor=actor(request), what=f"checkin_age>{days}d")
    return json_response({"result": removed})


# token and Basic clients carry no session, hence no CSRF token (api_guard checks session callers)
@view_config(route_name="api_register", request_method="POST", permission=Permission.MANAGE,
             require_csrf=False, decorator=api_guard)
def register(request):
    params = api_params(request)
    key = text_param(params, "key", maxlen=64)
    if key is None:
        raise ApiError("invalid-key", "key is required")
    hostname = text_param(params, "hostname") or ""
    try:
        agents.parse_info({"hostname": hostname})  # the same rules as a hostname an agent reports
    except ServiceError as exc:
        raise ApiError("bad-param", str(exc)) from None
    # no IP: the caller is an admin's script, not the server; the server's first check-in records it
    result = agents.register(request.dbsession, key, hostname=hostname, ip="", pm=request.registry.pm,
                             request=request, actor=actor(request))
    if result.code == agents.LIMIT_REACHED:
        raise ApiError("key-limit-reached", f"key '{key}' has reached its server limit")
    if result.code != agents.REGISTERED:
        reason = "is disabled" if result.code == agents.KEY_DISABLED else "does not exist"
        raise ApiError("invalid-key", f"key '{key}' {reason}")
    return json_response({"server_id": result.server.server_id})


# token and Basic clients carry no session, hence no CSRF token (api_guard checks session callers)
@view_config(route_name="api_delete_server", request_method="POST", permission=Permission.MANAGE,
             require_csrf=False, decorator=api_guard)
def delete_server(request):
    params = api_params(request)
    given = {name: text_param(params, name, maxlen=maxlen)
             for name, maxlen in (("hostname", 255), ("ip", 45), ("server_id", 64))}
    given = {name: value for name, value in given.items() if value is not None}
    if len(given) != 1:
        raise ApiError("bad-param", "give exactly one of hostname, ip or server_id")
    (name, value), = given.items()
    # an exact match: a wildcard here could remove the whole fleet by accident
    column = {"hostname": Server.hostname, "ip": Server.ip, "server_id": Server.server_id}[name]
    target = short_id(value) if name == "server_id" else value
    removed = delete_servers_where(request.dbsession, column == value, pm=request.registry.pm, request=request,
                                   actor=actor(request), what=f"{name}={target}")
    return json_response({"result": removed})


# token and Basic clients carry no session, hence no CSRF token (api_guard checks session callers)
@view_config(route_name="api_set_tags", request_method="POST", permission=Permission.MANAGE,
             require_csrf=False, decorator=api_guard)
def set_tags(request):
    params = api_params(request)
    server_id = text_param(params, "server_id", maxlen=64, required=True)
    if "tags" not in params:
        raise ApiError("missing-param", 'tags is required (send tags="" to remove every tag)')
    server = get_server(request.dbsession, server_id) if agents.valid_server_id(server_id) else None
    if server is None:
        raise ApiError("unknown-server", "no server has this server_id", 404)
    set_server_tags(request.dbsession, server, params["tags"], actor=actor(request), request=request)
    return json_response({"result": "ok"})
