"""The admin REST API (protocol.md §6): its routes and the OpenAPI document. The plumbing its views
share (parameters, JSON answers and errors, :func:`api_guard`) is the REST toolkit in
``web/rest.py``, which plugins' APIs use too.

The views live in ``api_servers.py`` (servers, registration, tags) and ``api_keys.py`` (keys,
users); the OpenAPI document in ``web/openapi.py``. Who may call: the security policy (HTTP Basic with
a console user, or an API token in the ``eportal.api_key_header`` header); reads need
``Permission.VIEW``, writes ``Permission.MANAGE``.
"""
from __future__ import annotations

from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from ..web.rest import add_api_routes, api_guard, json_response

#: route name -> (pattern, methods served); the 405 fallback answers every other method
ROUTES = {
    "api_servers": ("/admin/api/servers", ("GET", "DELETE")),
    "api_register": ("/admin/api/register", ("POST",)),
    "api_delete_server": ("/admin/api/delete_server", ("POST",)),
    "api_set_tags": ("/admin/api/set_tags", ("POST",)),
    "api_keys": ("/admin/api/keys/", ("GET", "POST")),
    "api_key": ("/admin/api/keys/{key}", ("DELETE",)),
    "api_users": ("/admin/api/users/", ("GET",)),
    "api_openapi": ("/admin/api/openapi.json", ("GET",)),
}


# --- the document, and other methods --------------------------------------------------------------

# public on purpose: integrations read the API description before they have credentials
@view_config(route_name="api_openapi", request_method="GET", permission=NO_PERMISSION_REQUIRED,
             require_csrf=False, decorator=api_guard)  # a GET: no CSRF concern; no session needed
def openapi_document(context, request):
    from ..web.openapi import build_document
    return json_response(build_document(request))


def includeme(config):
    add_api_routes(config, ROUTES)
