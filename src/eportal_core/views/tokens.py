"""Console page for REST API tokens: each user sees their own, admins everyone's. A new token is
shown once, on the page view right after it was created, and never again (services.tokens keeps
only its digest). Creating and revoking need ``manage``: a token has its owner's role, and a
read-only account changes nothing, not even its tokens."""
from __future__ import annotations

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from ..models import User, utcnow
from ..permissions import Permission
from ..services import ServiceError
from ..services import tokens as tokens_service

#: the session key that carries a new token to the one page view that shows it
NEW_TOKEN = "new_token"
TIME = "%Y-%m-%d %H:%M"


def _current_user(request) -> User:
    return request.dbsession.get(User, request.identity.user_id)


def _rows(request, everyone: bool) -> list[dict]:
    user = _current_user(request)
    now = utcnow()
    return [{
        "id": t.id, "name": t.name, "owner": t.user.username, "prefix": t.prefix,
        "created": t.created.strftime(TIME),
        "expires": t.expires.strftime(TIME) if t.expires else None,
        "expired": t.expires is not None and t.expires <= now,
        "last_used": t.last_used.strftime(TIME) if t.last_used else None,
    } for t in tokens_service.list_tokens(request.dbsession, None if everyone else user)]


def _page(request, *, form=None, error: str = "", new_token=None) -> dict:
    # no cache may keep a page that shows (or just showed) a secret
    request.response.headers["Cache-Control"] = "no-store"
    everyone = not request.identity.readonly
    return {"title": "API tokens", "tokens": _rows(request, everyone), "everyone": everyone,
            "form": form or {"name": "", "expires_days": ""}, "error": error, "new_token": new_token,
            "header": request.registry.settings["eportal.api_key_header"],
            "api_url": request.route_url("api_servers"), "openapi_url": request.route_url("api_openapi"),
            "max_days": 3650}


@view_config(route_name="tokens", renderer="eportal_core:templates/tokens/list.pt", request_method="GET")
def tokens_list(request):
    # shown on this one page view, then gone from the session
    new_token = request.session.pop(NEW_TOKEN, None)
    return _page(request, new_token=new_token)


@view_config(route_name="token_add", renderer="eportal_core:templates/tokens/list.pt", request_method="POST",
             permission=Permission.MANAGE)
def token_add(request):
    form = {"name": request.POST.get("name", "").strip()[:200], "expires_days": request.POST.get("expires_days", "").strip()[:20]}
    try:
        days = None
        if form["expires_days"]:
            try:
                days = int(form["expires_days"])
            except ValueError:
                raise ServiceError("expiry must be a whole number of days (or empty for none)") from None
        token, row = tokens_service.create_token(request.dbsession, _current_user(request), form["name"],
                                                 expires_days=days, actor=request.identity.username)
    except ServiceError as exc:
        request.response.status_int = 400
        return _page(request, form=form, error=str(exc)[:1].upper() + str(exc)[1:] + ".")
    request.session[NEW_TOKEN] = {"name": row.name, "token": token}
    return HTTPSeeOther(request.route_url("tokens"))


@view_config(route_name="token_revoke", request_method="POST", permission=Permission.MANAGE)
def token_revoke(request):
    try:
        token_id = int(request.matchdict["token_id"])
        if not 0 < token_id < 2**31:  # beyond any id (and beyond PostgreSQL's integer)
            raise ValueError(token_id)
        row = tokens_service.revoke_token(request.dbsession, token_id, actor=_current_user(request))
    except (ValueError, ServiceError):
        request.session.flash("No such token (it may have been revoked already).", "error")
    else:
        request.session.flash(f"Token '{row.name}' of {row.user.username} revoked: it no longer works.", "ok")
    return HTTPSeeOther(request.route_url("tokens"))


def includeme(config):
    config.add_route("tokens", "/admin/tokens/")
    config.add_route("token_add", "/admin/tokens/add")
    config.add_route("token_revoke", "/admin/tokens/{token_id}/revoke")
