"""Console login and logout."""
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.security import NO_PERMISSION_REQUIRED, forget, remember
from pyramid.view import view_config

from ..services import audit
from ..services.login import LoginRefused, authenticate
from ..web.clientip import client_ip


def safe_next(request, target: str | None) -> str:
    """Only same-site console paths are followed after login (no open redirects)."""
    # printable ASCII only: CR/LF, NUL or non-latin-1 text in a Location header is a 500 (or header injection)
    if target and target.startswith("/admin") and not target.startswith("//") and "\\" not in target \
            and all(" " < c < "\x7f" for c in target):
        return request.application_url + target
    return request.route_url("home")


@view_config(route_name="login", renderer="eportal_core:templates/login.pt", permission=NO_PERMISSION_REQUIRED,
             request_method="GET")
def login_form(request):
    if request.identity is not None:
        return HTTPSeeOther(safe_next(request, request.params.get("next")))
    notice = ""
    if request.params.get("logged_out"):
        notice = "You have logged out."
    elif getattr(request.session, "expired", False):
        notice = "Your session expired. Log in again."
    return {"title": "Log in", "error": "", "notice": notice, "login": "", "next": request.params.get("next", ""),
            "csrf_token": request.session.get_csrf_token()}


@view_config(route_name="login", renderer="eportal_core:templates/login.pt", permission=NO_PERMISSION_REQUIRED,
             request_method="POST")
def login_submit(request):
    login = request.POST.get("login", "")
    next_url = request.POST.get("next", "")
    try:
        user = authenticate(request, login, request.POST.get("password", ""))
    except LoginRefused as exc:
        request.response.status_int = 401
        return {"title": "Log in", "error": str(exc), "notice": "", "login": login[:128], "next": next_url,
                "csrf_token": request.session.get_csrf_token()}
    remember(request, user.id)
    audit.record(request.dbsession, user.username, "login", user.username, ip=client_ip(request))
    return HTTPSeeOther(safe_next(request, next_url))


@view_config(route_name="logout", request_method="POST")
def logout(request):
    audit.record(request.dbsession, request.identity.username, "logout", ip=client_ip(request))
    forget(request)
    return HTTPSeeOther(request.route_url("login", _query={"logged_out": 1}))


def includeme(config):
    config.add_route("login", "/admin/login")
    config.add_route("logout", "/admin/logout")
