"""REST API for feeds and patchsets (protocol.md §6, compatible). Idempotent: posting a feed that
exists updates it; deleting a feed that is absent is not an error (``main`` is never deleted).

``POST /admin/api/patchsets/manage`` goes through ``services.deploy``, so nothing is ever enabled out
of order: ``enable`` and ``enable-upto`` enable the patchset and every one before it;
``disable`` and ``undeploy-downto`` disable it and every one after it. Reads need
``Permission.VIEW``, writes ``Permission.MANAGE``; the plumbing (parameters, JSON errors, the CSRF
check for console-session callers) is the core's ``web.rest``.
"""
from __future__ import annotations

from pyramid.view import view_config
from sqlalchemy import select

from eportal_core.api import (
    MAIN_FEED,
    STATUS_BLOCKED,
    ApiError,
    Patchset,
    Permission,
    ServiceError,
    actor,
    add_api_paths,
    add_api_routes,
    api_guard,
    api_params,
    bool_param,
    deploy,
    json_response,
    text_param,
)
from eportal_core.api import feeds as feeds_service

from .docs import FEED_RECORD, openapi_paths

#: route name -> (pattern, methods served); the 405 fallback answers every other method
ROUTES = {
    "api_feeds": ("/admin/api/feeds/", ("GET", "POST")),
    "api_feed": ("/admin/api/feeds/{name}", ("DELETE",)),
    "api_patchsets": ("/admin/api/patchsets/", ("GET",)),
    "api_patchsets_manage": ("/admin/api/patchsets/manage", ("POST",)),
}
#: action -> the deploy rule it applies (services.deploy.enable_upto or rollback_from)
ENABLE, DISABLE = "enable", "disable"
ACTIONS = {"enable": ENABLE, "enable-upto": ENABLE, "disable": DISABLE, "undeploy-downto": DISABLE}


def feed_record(feed, keys: int) -> dict:
    return {"name": feed.name, "auto": feed.auto, "deploy_after": feed.deploy_after, "channel": feed.channel,
            "keys": keys}


def _feed(db, name: str | None):
    try:
        return feeds_service.feed_by_name(db, name or MAIN_FEED)
    except ServiceError as exc:
        raise ApiError("unknown-feed", str(exc)) from None


# token and Basic clients carry no session, hence no CSRF token (api_guard checks session callers)
@view_config(route_name="api_feeds", request_method="GET", permission=Permission.VIEW,
             require_csrf=False, decorator=api_guard)
def list_feeds(request):
    rows = feeds_service.list_feeds(request.dbsession)
    return json_response({"result": [feed_record(row.feed, row.keys) for row in rows]})


def _optional_bool(params: dict, name: str) -> bool | None:
    return None if (params.get(name) or "").strip() == "" else bool_param(params, name)


# token and Basic clients carry no session, hence no CSRF token (api_guard checks session callers)
@view_config(route_name="api_feeds", request_method="POST", permission=Permission.MANAGE,
             require_csrf=False, decorator=api_guard)
def save_feed(request):
    params = api_params(request)
    db = request.dbsession
    name = text_param(params, "name", maxlen=64, required=True)
    # absent parameters keep what an existing feed has (a new one: no auto update, at once, no channel)
    deploy_after = params.get("deploy_after")
    feed, _created = feeds_service.save_feed(
        db, name, auto=_optional_bool(params, "auto"),
        deploy_after=deploy_after if deploy_after is not None and deploy_after.strip() else None,
        channel=params.get("channel"), actor=actor(request))
    return json_response({"result": feed_record(feed, feeds_service.count_keys(db, feed))})


# token and Basic clients carry no session, hence no CSRF token (api_guard checks session callers)
@view_config(route_name="api_feed", request_method="DELETE", permission=Permission.MANAGE,
             require_csrf=False, decorator=api_guard)
def delete_feed(request):
    api_params(request)  # a malformed body is refused even here
    name = request.matchdict["name"]
    if name == MAIN_FEED:
        raise ApiError("cannot-delete-main", "the main feed cannot be deleted")
    # deleting what is absent is not an error (§6: idempotent); the feed's keys move to main
    if feeds_service.get_feed(request.dbsession, name) is not None:
        feeds_service.delete_feed(request.dbsession, name, actor=actor(request))
    return json_response({"result": "ok"})


# token and Basic clients carry no session, hence no CSRF token (GETs need none anyway)
@view_config(route_name="api_patchsets", request_method="GET", permission=Permission.VIEW,
             require_csrf=False, decorator=api_guard)
def list_patchsets(request):
    params = api_params(request)
    feed = _feed(request.dbsession, text_param(params, "feed", maxlen=64))
    product = text_param(params, "product", maxlen=64)
    rows = deploy.status(request.dbsession, feed, product)
    return json_response({"result": [{"patchset": p.name, "status": state} for p, state in rows]})


# token and Basic clients carry no session, hence no CSRF token (api_guard checks session callers)
@view_config(route_name="api_patchsets_manage", request_method="POST", permission=Permission.MANAGE,
             require_csrf=False, decorator=api_guard)
def manage_patchsets(request):
    params = api_params(request, repeatable=("feed",))
    db = request.dbsession
    name = text_param(params, "patchset", maxlen=64, required=True)
    action = text_param(params, "action", maxlen=32, required=True)
    if action not in ACTIONS:
        raise ApiError("bad-param", f"action must be one of {', '.join(ACTIONS)}")
    names = [n.strip() for n in params.get("feed", []) if n.strip()] or [MAIN_FEED]
    feeds = [_feed(db, n) for n in dict.fromkeys(names)]  # every feed must exist before anything changes
    patchset = db.scalar(select(Patchset).where(Patchset.name == name))
    if patchset is None:
        raise ApiError("unknown-patchset", f"patchset '{name}' is not known to this portal", 404)
    who, pm = actor(request), request.registry.pm
    if ACTIONS[action] == ENABLE:
        if patchset.status == STATUS_BLOCKED:
            raise ApiError("patchset-blocked", f"patchset {patchset.name} is blocked upstream and cannot be enabled")
        if patchset.downloaded is None:
            raise ApiError("not-downloaded", f"patchset {patchset.name} is not downloaded yet: download it first")
        for feed in feeds:
            deploy.enable_upto(db, feed, patchset, pm=pm, actor=who)
    else:
        for feed in feeds:
            deploy.rollback_from(db, feed, patchset, pm=pm, actor=who)
    return json_response({"result": "ok"})


def includeme(config):
    add_api_routes(config, ROUTES)
    add_api_paths(config, "feeds", openapi_paths(), schemas={"Feed": FEED_RECORD}, tags=("feeds", "patchsets"))
    config.scan(__name__)
