"""The REST toolkit of the admin API, shared by the core's API and plugins' APIs: parameters from
the query, a form or a JSON body alike, JSON answers, and JSON errors
``{"error": "<slug>", "message": "..."}`` with a 4xx status (never a 500, never HTML).

CSRF: API views opt out of Pyramid's check (token and Basic clients carry no session and no CSRF
token), but a caller authenticated by the console *session cookie* could be a forged cross-site
request, so :func:`api_guard` checks the CSRF token for those callers itself.
"""
from __future__ import annotations

import functools
import json
import math

from pyramid.csrf import check_csrf_origin, check_csrf_token
from pyramid.response import Response
from sqlalchemy.exc import IntegrityError

from ..permissions import Permission
from ..services import ServiceError
from .params import SAFE_METHODS, ParamError, read_params

#: a script sends at most a few kilobytes of parameters
MAX_BODY = 1024 * 1024
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class ApiError(Exception):
    """A refused request, answered as ``{"error": slug, "message": message}`` with ``status``."""

    def __init__(self, slug: str, message: str, status: int = 400):
        super().__init__(message)
        self.slug, self.message, self.status = slug, message, status


def json_response(data, status: int = 200) -> Response:
    resp = Response(json.dumps(data), status=status, content_type="application/json", charset="utf-8")
    resp.headers["Cache-Control"] = "no-store"
    return resp


def error_response(request, slug: str, message: str, status: int = 400) -> Response:
    # an error changes nothing, even if part of the work was done before the refusal
    request.tm.doom()
    return json_response({"error": slug, "message": message}, status)


def api_guard(view):
    """View decorator of every API view: the CSRF check for session callers, errors as JSON."""
    @functools.wraps(view)
    def wrapper(context, request):
        identity = request.identity
        if request.method not in SAFE_METHODS and identity is not None and identity.via == "session":
            # raises BadCSRFOrigin/BadCSRFToken: answered 400 {"error": "csrf-check-failed"} (views/errors.py)
            check_csrf_origin(request, raises=True)
            check_csrf_token(request, raises=True)
        try:
            return view(context, request)
        except ApiError as exc:
            return error_response(request, exc.slug, exc.message, exc.status)
        except ServiceError as exc:
            return error_response(request, "bad-param", str(exc))
        except IntegrityError:
            # two callers created the same thing at the same moment: the other one won
            return error_response(request, "conflict", "a concurrent request changed the same data; try again", 409)
    return wrapper


# --- parameters ---------------------------------------------------------------------------------

def _scalar(name: str, value) -> str | None:
    """A JSON value as parameter text (true -> "true", 10 -> "10"); objects and lists are refused."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ApiError("bad-param", f"{name[:40]} must be a finite number")
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, str):
        return value
    raise ApiError("bad-param", f"{name[:40]} must be text or a number, not a list or an object")


def api_params(request, repeatable: tuple[str, ...] = ()) -> dict[str, str]:
    """The request's parameters as text: query string, then a form or JSON object body (the body
    wins). 400 for a JSON body that is not an object and for input that is not UTF-8, 413 for a
    huge body, 415 for other body types. A name in ``repeatable`` may come several times
    (``feed=a&feed=b``, or a JSON list): its value is then the list of every value given."""
    params: dict = {}

    def put(name: str, value: str) -> None:
        if name in repeatable:
            params.setdefault(name, []).append(value)
        else:
            params[name] = value
    try:
        query, body = read_params(request, max_body=MAX_BODY, example='{"hostname": "web1"}')
    except ParamError as exc:
        raise ApiError(exc.slug, exc.message, exc.status) from None
    for name, value in query:
        put(name, value)
    if isinstance(body, dict):
        for name, value in body.items():
            for item in value if name in repeatable and isinstance(value, list) else [value]:
                text = _scalar(name, item)
                if text is not None:
                    put(name, text)
    elif body:
        for name, value in body:
            put(name, value)
    return params


def text_param(params: dict, name: str, *, maxlen: int = 255, required: bool = False) -> str | None:
    """A stripped text parameter; None when absent (or empty, unless ``required``)."""
    value = params.get(name)
    value = value.strip() if value is not None else None
    if not value:
        if required:
            raise ApiError("missing-param", f"{name} is required")
        return None
    if len(value) > maxlen:
        raise ApiError("bad-param", f"{name} is too long (at most {maxlen} characters)")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ApiError("bad-param", f"{name} must not contain control characters")
    return value


def bool_param(params: dict, name: str) -> bool:
    """``true``/``false`` (also 1/0, yes/no, on/off); absent or empty is false."""
    value = (params.get(name) or "").strip().lower()
    if value in ("", "false", "0", "no", "off"):
        return False
    if value in ("true", "1", "yes", "on"):
        return True
    raise ApiError("bad-param", f"{name} must be true or false")


def actor(request) -> str:
    """The name recorded in the audit trail for this API caller."""
    identity = request.identity
    return f"{identity.username} (api)" if identity is not None else "api"


def add_api_routes(config, routes: dict) -> None:
    """Add ``{name: (pattern, methods)}`` routes, each with a 405 + ``Allow`` answer for the other
    methods (the core's API and plugins' APIs alike)."""
    def method_not_allowed(context, request):
        allowed = routes[request.matched_route.name][1]
        resp = error_response(request, "method-not-allowed", f"use {' or '.join(allowed)}", 405)
        resp.headers["Allow"] = ", ".join(allowed)
        return resp

    for name, (pattern, methods) in routes.items():
        config.add_route(name, pattern)
        others = tuple(m for m in ALL_METHODS if m not in methods and not (m == "HEAD" and "GET" in methods))
        # Permission MANAGE so that nobody learns more than the real views tell them (anonymous
        # 401, readonly 403); CSRF off as on every API view (token and Basic clients carry no
        # session), but api_guard still checks session callers.
        config.add_view(method_not_allowed, route_name=name, request_method=others, permission=Permission.MANAGE,
                        require_csrf=False, decorator=api_guard)
