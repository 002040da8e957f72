"""REST API for registration keys and the user list (protocol.md §6). Idempotent: posting a key
that exists updates it, deleting a key that is absent is not an error. The rules live in
services.keys and services.users."""
from __future__ import annotations

from pyramid.view import view_config

from ..permissions import Permission
from ..services import ServiceError
from ..services import feeds as feeds_service
from ..services import keys as keys_service
from ..services.users import list_users as all_users
from ..web.rest import ApiError, actor, api_guard, api_params, json_response, text_param


def key_record(key, servers: int) -> dict:
    return {"key": key.key, "note": key.note, "server_limit": key.server_limit, "feed": key.feed.name,
            "servers": servers}


# token and Basic clients carry no session, hence no CSRF token (api_guard checks session callers)
@view_config(route_name="api_keys", request_method="GET", permission=Permission.VIEW,
             require_csrf=False, decorator=api_guard)
def list_keys(request):
    rows = keys_service.list_keys(request.dbsession)
    return json_response({"result": [key_record(row.key, row.servers) for row in rows]})


# token and Basic clients carry no session, hence no CSRF token (api_guard checks session callers)
@view_config(route_name="api_keys", request_method="POST", permission=Permission.MANAGE,
             require_csrf=False, decorator=api_guard)
def save_key(request):
    params = api_params(request)
    db = request.dbsession
    name = text_param(params, "key", maxlen=64)
    # absent parameters keep what an existing key has (and take the defaults on a new one)
    note = params.get("note")
    server_limit = params.get("server_limit")
    feed = params.get("feed")
    if feed is not None and feed.strip():
        try:
            feeds_service.feed_by_name(db, feed.strip())
        except ServiceError as exc:
            raise ApiError("unknown-feed", str(exc)) from None
    feed = feed if feed is not None and feed.strip() else None
    if name is not None and keys_service.get_key(db, name) is not None:
        key = keys_service.update_key(db, name, note=note, server_limit=server_limit, feed=feed, actor=actor(request))
    else:
        key = keys_service.create_key(db, name, note=note or "", server_limit=server_limit or 0, feed=feed,
                                      actor=actor(request))
    return json_response({"result": key_record(key, keys_service.count_servers(db, key))})


# token and Basic clients carry no session, hence no CSRF token (api_guard checks session callers)
@view_config(route_name="api_key", request_method="DELETE", permission=Permission.MANAGE,
             require_csrf=False, decorator=api_guard)
def delete_key(request):
    api_params(request)  # a malformed body is refused even here
    name = request.matchdict["key"]
    # deleting what is absent is not an error (§6: idempotent)
    if keys_service.get_key(request.dbsession, name) is not None:
        keys_service.delete_key(request.dbsession, name, actor=actor(request), pm=request.registry.pm, request=request)
    return json_response({"result": "ok"})


# token and Basic clients carry no session, hence no CSRF token (GETs need none anyway)
@view_config(route_name="api_users", request_method="GET", permission=Permission.VIEW,
             require_csrf=False, decorator=api_guard)
def list_users(request):
    return json_response({"result": [{"id": u.id, "username": u.username, "description": u.description,
                                      "readonly": u.readonly} for u in all_users(request.dbsession)]})
