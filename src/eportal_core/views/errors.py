"""Not found, forbidden and unexpected errors: a clear page (or JSON on the API), never a traceback."""
from pyramid.exceptions import BadCSRFOrigin, BadCSRFToken, URLDecodeError
from pyramid.httpexceptions import HTTPFound
from pyramid.view import exception_view_config, forbidden_view_config, notfound_view_config

from ..security import API_PREFIX
from ..web.incidents import log_incident


def _wants_json(request) -> bool:
    # the raw WSGI path: request.path_info raises on a path that is not UTF-8
    path = request.environ.get("PATH_INFO", "")
    return path.startswith(API_PREFIX) or path == "/admin/health"


@notfound_view_config(renderer="eportal_core:templates/error.pt")
def notfound(request):
    request.response.status_int = 404
    if _wants_json(request):
        request.override_renderer = "json"
        return {"error": "not-found"}
    return {"title": "Page not found", "message": "There is nothing at this address.", "code": 404}


@forbidden_view_config(renderer="eportal_core:templates/error.pt")
def forbidden(request):
    if _wants_json(request):
        request.override_renderer = "json"
        if request.identity is None:
            request.response.status_int = 401
            request.response.headers["WWW-Authenticate"] = 'Basic realm="eportal"'
            return {"error": "unauthorized"}
        request.response.status_int = 403
        return {"error": "forbidden"}
    if request.identity is None:
        if request.method == "GET":
            return HTTPFound(request.route_url("login", _query={"next": request.path_qs}))
        return HTTPFound(request.route_url("login"))
    request.response.status_int = 403
    message = "Your account is read-only: it can look at everything but change nothing."
    if not request.identity.readonly:
        message = "You are not allowed to do this."
    return {"title": "Not allowed", "message": message, "code": 403}


@exception_view_config(BadCSRFToken, renderer="eportal_core:templates/error.pt")
@exception_view_config(BadCSRFOrigin, renderer="eportal_core:templates/error.pt")
def bad_csrf(exc, request):
    request.response.status_int = 400
    if _wants_json(request):
        request.override_renderer = "json"
        return {"error": "csrf-check-failed"}
    return {"title": "Form expired",
            "message": "This form was not accepted because its security token is missing or stale. "
                       "Go back, reload the page and submit it again.", "code": 400}


@exception_view_config(URLDecodeError, renderer="eportal_core:templates/error.pt")
def bad_path_encoding(exc, request):
    request.response.status_int = 400
    if _wants_json(request):
        request.override_renderer = "json"
        return {"error": "bad-encoding", "message": "the address is not valid UTF-8"}
    return {"title": "Bad address", "message": "This address is not valid UTF-8.", "code": 400}


@exception_view_config(Exception, renderer="eportal_core:templates/error.pt")
def unexpected(exc, request):
    incident = log_incident(request.method, request.environ.get("PATH_INFO"), exc)
    request.response.status_int = 500
    if _wants_json(request):
        request.override_renderer = "json"
        return {"error": "internal-error", "incident": incident}
    return {"title": "Something went wrong",
            "message": f"The error was logged as incident {incident}. Nothing was changed.", "code": 500}
