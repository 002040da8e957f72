"""The agent protocol under ``REGISTRATION_URL`` (protocol.md §2): register, unregister, check-in,
and the legacy ``unregister_by_key``. The wire formats live here, in one module, so they are easy
to adapt once a real agent is captured on the wire.

Agents carry no console session and no CSRF token: every view here is public
(``NO_PERMISSION_REQUIRED``, ``require_csrf=False``); the registration key, the unguessable
server_id or the api.token file is the credential. Bad input gets the documented answer code or a
4xx JSON ``{"error": "<slug>", "message": "..."}``, never a 500, and changes nothing.
"""
from __future__ import annotations

import functools
import hmac
import ipaddress
import json
import logging
from pathlib import Path

from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from ..security import basic_credentials
from ..services import ServiceError, agents
from ..services.keys import KEY_NAME_RE
from ..web.clientip import client_ip
from ..web.params import ParamError, read_params
from .identity import record_checkin
from .lane import add_lane_view

log = logging.getLogger(__name__)

REGISTRATION_URL = "/admin/api/kcare"
#: the legacy unregister_by_key token: ``<data dir>/config/api.token``
TOKEN_FILE = ("config", "api.token")
#: agents send a few hundred bytes; anything near this is not an agent
MAX_BODY = 64 * 1024

#: route name -> (path under REGISTRATION_URL, allowed methods)
ROUTES = {
    "agent_register_json": ("register_server.json", ("GET", "POST")),
    "agent_register_plain": ("register_server.plain", ("GET", "POST")),
    "agent_unregister_json": ("unregister_server.json", ("GET", "POST")),
    "agent_unregister_plain": ("unregister_server.plain", ("GET", "POST")),
    "agent_checkin": ("checkin", ("POST",)),
    "agent_unregister_by_key": ("unregister_by_key.plain", ("GET",)),
}


# --- input and output -------------------------------------------------------------------------

class BadInput(Exception):
    """Refused input: answered as ``{"error": slug, "message": message}`` with ``status``."""

    def __init__(self, slug: str, message: str, status: int = 400):
        super().__init__(message)
        self.slug, self.message, self.status = slug, message, status

    def response(self) -> Response:
        return json_response({"error": self.slug, "message": self.message}, self.status)


def _response(body: bytes, status: int, content_type: str) -> Response:
    # a ready header list: WebOb's content_type/charset handling costs more than the whole check-in
    return Response(body=body, status=status,
                    headerlist=[("Content-Type", content_type), ("Cache-Control", "no-store")])


def json_response(data, status: int = 200) -> Response:
    return _response(json.dumps(data).encode(), status, "application/json")


def plain_response(text: str, status: int = 200) -> Response:
    return _response(text.encode(), status, "text/plain; charset=UTF-8")


def guarded(view):
    """Turn :class:`BadInput` raised anywhere in ``view`` into its 4xx answer."""
    @functools.wraps(view)
    def wrapper(request):
        try:
            return view(request)
        except BadInput as exc:
            return exc.response()
    return wrapper


def agent_params(request) -> dict:
    """The request's parameters from the query string, a form body or a JSON object body, merged
    (the body wins); refused input becomes its 4xx answer (web/params.read_params)."""
    try:
        query, body = read_params(request, max_body=MAX_BODY, example='{"server_id": "..."}')
    except ParamError as exc:
        raise BadInput(exc.slug, exc.message, exc.status) from None
    params = dict(query)
    if body:
        params.update(body)
    return params


def _text(params: dict, name: str) -> str | None:
    """A parameter as text (JSON numbers are accepted as their digits); None when absent."""
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadInput("bad-param", f"{name} must be text")
    return str(value)


def _info(params: dict) -> dict:
    """The validated §4 fields (services.agents.parse_info), or a 400 naming the bad one."""
    try:
        return agents.parse_info(params)
    except ServiceError as exc:
        raise BadInput("bad-param", str(exc)) from None


# --- registration -------------------------------------------------------------------------------

def _register(request) -> tuple[int, str | None]:
    if request.method == "HEAD":
        # Pyramid answers HEAD wherever GET is allowed; a HEAD must never register a server
        raise BadInput("method-not-allowed", "use GET or POST to register", 405)
    params = agent_params(request)
    key = _text(params, "key") or ""
    info = _info(params)
    hostname = info.pop("hostname", "")
    if not KEY_NAME_RE.match(key):  # cannot name a key (and could upset the database): unknown
        return agents.UNKNOWN_KEY, None
    result = agents.register(request.dbsession, key, hostname=hostname, ip=client_ip(request), info=info,
                             pm=request.registry.pm, request=request)
    return result.code, (result.server.server_id if result.server is not None else None)


# agents carry no session: the registration key is the credential
@view_config(route_name="agent_register_json", request_method=("GET", "POST"),
             permission=NO_PERMISSION_REQUIRED, require_csrf=False)
@guarded
def register_server_json(request):
    code, server_id = _register(request)
    return json_response({"code": code, "server_id": server_id} if server_id else {"code": code})


# agents carry no session: the registration key is the credential
@view_config(route_name="agent_register_plain", request_method=("GET", "POST"),
             permission=NO_PERMISSION_REQUIRED, require_csrf=False)
@guarded
def register_server_plain(request):
    code, server_id = _register(request)
    return plain_response(f"code={code}\n" + (f"server_id={server_id}\n" if server_id else ""))


# --- unregistration -----------------------------------------------------------------------------

def _unregister(request) -> bool:
    params = agent_params(request)
    server_id = _text(params, "server_id") or ""
    # a malformed server_id names no server: the documented "not removed" answer, no query
    return agents.unregister(request.dbsession, server_id, pm=request.registry.pm, request=request)


# agents carry no session: the unguessable server_id is the credential
@view_config(route_name="agent_unregister_json", request_method=("GET", "POST"),
             permission=NO_PERMISSION_REQUIRED, require_csrf=False)
@guarded
def unregister_server_json(request):
    return json_response(_unregister(request))


# agents carry no session: the unguessable server_id is the credential
@view_config(route_name="agent_unregister_plain", request_method=("GET", "POST"),
             permission=NO_PERMISSION_REQUIRED, require_csrf=False)
@guarded
def unregister_server_plain(request):
    return plain_response("1" if _unregister(request) else "0")


# --- check-in -----------------------------------------------------------------------------------

# agents carry no session: the unguessable server_id is the credential
@view_config(route_name="agent_checkin", request_method="POST",
             permission=NO_PERMISSION_REQUIRED, require_csrf=False)
@guarded
def checkin(request):
    params = agent_params(request)
    server_id = _text(params, "server_id")
    if server_id is None:  # an agent may name itself the way it does on patch requests
        creds = basic_credentials(request)
        server_id = creds[0] if creds else None
    if not server_id:
        raise BadInput("bad-server-id", "server_id is required")
    if not agents.valid_server_id(server_id):
        raise BadInput("bad-server-id", "server_id must be 16 letters and digits, starting with a letter")
    # the check-in is coalesced, never written here; the server's pk may come from memory
    if not record_checkin(request, server_id, _info(params)):
        return _response(_UNKNOWN_SERVER, 404, "application/json")
    return _response(_CHECKED_IN, 200, "application/json")


_CHECKED_IN = json.dumps({"result": "ok"}).encode()
_UNKNOWN_SERVER = json.dumps({"error": "unknown-server"}).encode()


# --- legacy: unregister every server of a key at one IP -----------------------------------------

# integrations carry no session: the api.token file's content is the credential
@view_config(route_name="agent_unregister_by_key", request_method="GET",
             permission=NO_PERMISSION_REQUIRED, require_csrf=False)
@guarded
def unregister_by_key_plain(request):
    params = agent_params(request)
    path = Path(request.registry.settings["eportal.data_dir"]).joinpath(*TOKEN_FILE)
    try:
        expected = path.read_bytes().strip()
    except FileNotFoundError:
        return plain_response("-3")
    except OSError as exc:
        log.error("unregister_by_key: cannot read %s: %s", path, exc.strerror)
        return plain_response("-1")
    given = (_text(params, "token") or "").strip().encode("utf-8")
    if not expected or not hmac.compare_digest(given, expected):
        log.warning("unregister_by_key: token mismatch from %s", client_ip(request))
        return plain_response("-2")
    key, ip = _text(params, "key") or "", (_text(params, "ip") or "").strip()
    if not KEY_NAME_RE.match(key) or not _is_ip(ip):
        return plain_response("0")  # names no key or no address: nothing to remove
    try:
        removed = agents.unregister_by_key(request.dbsession, key, ip, pm=request.registry.pm, request=request)
    except Exception:
        log.exception("unregister_by_key failed (key %s, ip %s)", key, ip)
        request.tm.doom()  # roll back whatever part of it happened
        return plain_response("-1")
    return plain_response(str(removed))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def includeme(config):
    config.scan(__name__)
    # Only the methods in ROUTES match; any other gets the API's JSON 404. (No catch-all 405 view:
    # a view without a method predicate would accept every method on a public route.)
    for name, (path, methods) in ROUTES.items():
        config.add_route(name, f"{REGISTRATION_URL}/{path}", request_method=methods)
    # most of the fleet's traffic: answered ahead of the router (agent/lane.py says why)
    add_lane_view(config, "POST", f"{REGISTRATION_URL}/{ROUTES['agent_checkin'][0]}", checkin)
