"""The OpenAPI 3.1 document of the admin REST API (protocol.md §6) and of the agent endpoints
under ``/admin/api/kcare`` (§2), served at ``GET /admin/api/openapi.json``.

Written as Python data next to the code it describes; ``tests/functional/test_openapi.py`` checks
that every API route is documented (and nothing else), and validates real answers of every
operation against the response schemas here. Change both together. Plugins document the API routes
they add with :func:`add_api_paths` (their own tests exercise those operations).
"""
from __future__ import annotations

from importlib import metadata

TIMESTAMP = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$",
             "description": "UTC, `YYYY-MM-DD HH:MM:SS.ffffff`"}
SERVER_ID = {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9]{15}$",
             "description": "16 letters and digits, first a letter"}
AGE = {"type": "string", "pattern": r"^-?\d{1,6}h?$",
       "description": "Days, or hours with `h` (`12h`). Positive: older than that; negative: within that."}
BOOL_TEXT = {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]}


def _nullable(schema: dict) -> dict:
    return {**schema, "type": [schema["type"], "null"]}


SERVER_RECORD = {
    "type": "object",
    "description": "A registered server (protocol.md §4), plus `status` and `latest_level` (eportal's own).",
    "additionalProperties": False,
    "properties": {
        "id": SERVER_ID,
        "ip": {"type": "string", "description": "Last address the server contacted the portal from (empty until then)"},
        "hostname": {"type": "string"},
        "key": {"type": ["string", "null"], "description": "Registration key; null once the key was deleted"},
        "feed": {"type": ["string", "null"], "description": "Feed of the key"},
        "registered": TIMESTAMP,
        "checkin": _nullable(TIMESTAMP),
        "updated": {**_nullable(TIMESTAMP), "description": "Last time the patch level changed"},
        "euname": {"type": "string", "description": "Effective kernel"},
        "release": {"type": "string"},
        "kernel_id": {"type": "string", "pattern": "^([0-9a-f]{40})?$", "description": "sha1 of /proc/version"},
        "patch_level": {"type": ["integer", "null"]},
        "patch_type": {"type": "string", "enum": ["default", "extra", "free"]},
        "tags": {"type": ["string", "null"], "description": "`name` or `name:value`, `;`-separated"},
        "uptime": {"type": ["integer", "null"], "description": "Seconds"},
        "version": {"type": "string"},
        "virt": {"type": "string"},
        "kcare_version": {"type": "string"},
        "distro": {"type": "string"},
        "distro_version": {"type": "string"},
        "machine": {"type": "string"},
        "processor": {"type": "string"},
        "status": {"type": "string", "enum": ["uptodate", "outofdate", "unsupported"],
                   "description": "Patch level against the latest its feed offers for its kernel"},
        "latest_level": {"type": ["integer", "null"], "description": "Latest level its feed offers for its kernel"},
    },
}
SERVER_RECORD["required"] = list(SERVER_RECORD["properties"])

KEY_RECORD = {
    "type": "object", "additionalProperties": False,
    "required": ["key", "note", "server_limit", "feed", "servers"],
    "properties": {
        "key": {"type": "string"}, "note": {"type": "string"},
        "server_limit": {"type": "integer", "minimum": 0, "description": "0 = unlimited"},
        "feed": {"type": "string"}, "servers": {"type": "integer", "minimum": 0},
    },
}
USER_RECORD = {
    "type": "object", "additionalProperties": False, "required": ["id", "username", "description", "readonly"],
    "properties": {"id": {"type": "integer"}, "username": {"type": "string"}, "description": {"type": "string"},
                   "readonly": {"type": "boolean"}},
}
ERROR = {
    "type": "object", "additionalProperties": False, "required": ["error"],
    "properties": {
        "error": {"type": "string", "pattern": "^[a-z][a-z-]*$", "description": "A stable slug for programs"},
        "message": {"type": "string", "description": "What went wrong, for people"},
    },
}

ERRORS = {
    "400": "Bad parameters (`bad-param`, `missing-param`, `bad-json`, `bad-encoding`; `csrf-check-failed` "
           "for a console-session caller without the CSRF token)",
    "401": "No valid credentials (`unauthorized`): wrong password, unknown, expired or revoked token",
    "403": "The caller's role may not do this (`forbidden`): read-only users and their tokens",
    "404": "Not found",
    "409": "A concurrent request changed the same data (`conflict`)",
    "413": "The body is too large (`too-large`)",
    "415": "The body is neither a form nor JSON (`unsupported-media-type`)",
}
#: the agent endpoints answer these 4xx with the same error object
AGENT_ERRORS = ("400", "413", "415")
#: reads need only "view", which every role has: no 403
READ_ERRORS = ("400", "401")
WRITE_ERRORS = ("400", "401", "403", "413", "415")

# --- building blocks ------------------------------------------------------------------------------


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _text(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"text/plain": {"schema": schema}}}


def _errors(*codes: str, **special: str) -> dict:
    out = {code: {"$ref": f"#/components/responses/E{code}"} for code in codes}
    for code, description in special.items():
        out[code.lstrip("_")] = _json(_ref("Error"), description)
    return out


def _query(name: str, schema: dict, description: str = "", required: bool = False) -> dict:
    param = {"name": name, "in": "query", "schema": schema, "required": required}
    if description:
        param["description"] = description
    return param


def _body(properties: dict, required: tuple = (), description: str = "") -> dict:
    """Parameters as a form or a JSON object (the query string works too)."""
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return {"required": bool(required), "description": description or
            "As a form or a JSON object; the same parameters may also come in the query string.",
            "content": {"application/x-www-form-urlencoded": {"schema": schema}, "application/json": {"schema": schema}}}


def _op(op_id: str, summary: str, responses: dict, *, description: str = "", parameters=None, body=None,
        tags=("servers",), security=None) -> dict:
    op = {"operationId": op_id, "summary": summary, "tags": list(tags), "responses": responses}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if body:
        op["requestBody"] = body
    if security is not None:
        op["security"] = security
    return op


STR = {"type": "string"}
RESULT_COUNT = {"type": "object", "additionalProperties": False, "required": ["result"],
                "properties": {"result": {"type": "integer", "minimum": 0, "description": "How many servers were removed"}}}
RESULT_OK = {"type": "object", "additionalProperties": False, "required": ["result"],
             "properties": {"result": {"const": "ok"}}}

SERVER_FILTERS = [
    _query("hostname", STR, "Exact hostname, or a pattern with `%` wildcards"),
    _query("ip", STR, "Exact address, or a pattern with `%` wildcards (`10.0.%`)"),
    _query("feed", STR, "Servers whose key is on this feed (400 `unknown-feed` if it does not exist)"),
    _query("key", STR, "Servers of this key (400 `unknown-key` if it does not exist; `(none)`: servers without a key)"),
    _query("tag", STR, "Servers with tag `name` (any value) or exactly `name:value`"),
    _query("registered_age", AGE, "Registered more than N days (or `Nh` hours) ago; negative: within"),
    _query("checkin_age", AGE, "Last check-in more than N days (or `Nh` hours) ago (or never); negative: within"),
    _query("updated_age", AGE, "Patch level last changed more than N days (or `Nh` hours) ago (or never); negative: within"),
    _query("is_updated", BOOL_TEXT, "true: at the latest level its feed offers; false: out of date or unsupported"),
    _query("kernel", STR, "eportal's own: effective kernel (`%` wildcards) or kernel_id"),
    _query("server_id", {"type": "string", "maxLength": 16}, "eportal's own: one server"),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 10000, "default": 10}),
    _query("offset", {"type": "integer", "minimum": 0, "default": 0}),
    _query("only_count", BOOL_TEXT, "true: answer only the count (`result` is empty)"),
]

AGENT_INFO = {
    "hostname": STR, "euname": STR, "release": STR, "version": STR, "virt": STR, "kcare_version": STR,
    "distro": STR, "distro_version": STR, "machine": STR, "processor": STR,
    "kernel_id": {"type": "string", "pattern": "^[0-9a-fA-F]{40}$"},
    "patch_level": {"type": "integer", "minimum": -1, "description": "-1: no patches loaded"},
    "uptime": {"type": "integer", "minimum": 0},
    "patch_type": {"type": "string", "enum": ["default", "extra", "free"]},
    "tags": {"type": "string", "description": "`name` or `name:value`, `;`-separated (`tag` is read too)"},
}


def _agent_query(names) -> list:
    return [_query(name, AGENT_INFO.get(name, STR)) for name in names]


# --- the paths -------------------------------------------------------------------------------------

def _admin_paths() -> dict:
    servers_page = {"type": "object", "additionalProperties": False, "required": ["count", "limit", "offset", "result"],
                    "properties": {"count": {"type": "integer", "minimum": 0, "description": "All servers that match"},
                                   "limit": {"type": "integer"}, "offset": {"type": "integer"},
                                   "result": {"type": "array", "items": _ref("Server")}}}
    key_param = {"key": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$", "description": "Random (16 letters and digits) if empty"},
                 "feed": {"type": "string", "description": "Default `main` (400 `unknown-feed` if it does not exist)"},
                 "note": STR, "server_limit": {"type": "integer", "minimum": 0, "description": "0 = unlimited"}}
    return {
        "/admin/api/servers": {
            "get": _op("listServers", "List or count servers", {
                "200": _json(servers_page, "One page of servers, oldest registration first, and the count of all that match"),
                **_errors(*READ_ERRORS)}, parameters=SERVER_FILTERS,
                description="400 `unknown-key`/`unknown-feed` when the named key or feed does not exist."),
            "delete": _op("deleteInactiveServers", "Remove servers that have not checked in for N days", {
                "200": _json(RESULT_COUNT), **_errors(*WRITE_ERRORS)},
                parameters=[_query("checkin_age", {"type": "integer", "minimum": 1, "maximum": 100000}, "Days (a whole number, at least 1)",
                                   required=True)]),
        },
        "/admin/api/register": {
            "post": _op("registerServer", "Register a server under a key", {
                "200": _json({"type": "object", "additionalProperties": False, "required": ["server_id"],
                              "properties": {"server_id": SERVER_ID}}),
                **_errors(*WRITE_ERRORS[1:], _400="`invalid-key` (unknown or disabled key), `key-limit-reached`, "
                                                  "or bad parameters")},
                body=_body({"key": STR, "hostname": STR}, ("key",)),
                description="The server's address stays empty until its agent checks in."),
        },
        "/admin/api/delete_server": {
            "post": _op("deleteServer", "Remove servers by exact hostname, address or server_id", {
                "200": _json(RESULT_COUNT), **_errors(*WRITE_ERRORS)},
                body=_body({"hostname": STR, "ip": STR, "server_id": STR},
                           description="Exactly one of the three (as a form or a JSON object, or in the query string)."),
                description="Removing what is absent is not an error: `{\"result\": 0}`."),
        },
        "/admin/api/set_tags": {
            "post": _op("setTags", "Replace the tags of a server", {
                "200": _json(RESULT_OK), **_errors(*WRITE_ERRORS, _404="`unknown-server`")},
                body=_body({"server_id": SERVER_ID, "tags": {"type": "string", "description": "`env:prod;ubuntu`; empty removes all"}},
                           ("server_id", "tags"))),
        },
        "/admin/api/keys/": {
            "get": _op("listKeys", "List registration keys", {
                "200": _json({"type": "object", "additionalProperties": False, "required": ["result"],
                              "properties": {"result": {"type": "array", "items": _ref("Key")}}}),
                **_errors(*READ_ERRORS[1:])}, tags=("keys",)),
            "post": _op("saveKey", "Create a key, or update it if it exists", {
                "200": _json({"type": "object", "additionalProperties": False, "required": ["result"],
                              "properties": {"result": _ref("Key")}}),
                **_errors(*WRITE_ERRORS, "409")}, body=_body(key_param), tags=("keys",),
                description="Idempotent: parameters left out keep the existing key's values (a new key gets "
                            "feed `main`, no note, no limit)."),
        },
        "/admin/api/keys/{key}": {
            "delete": _op("deleteKey", "Delete a key and the servers registered with it", {
                "200": _json(RESULT_OK), **_errors(*WRITE_ERRORS)}, tags=("keys",),
                parameters=[{"name": "key", "in": "path", "required": True, "schema": STR}],
                description="Deleting a key that does not exist is not an error."),
        },
        "/admin/api/users/": {
            "get": _op("listUsers", "List console users", {
                "200": _json({"type": "object", "additionalProperties": False, "required": ["result"],
                              "properties": {"result": {"type": "array", "items": _ref("User")}}}),
                **_errors(*READ_ERRORS[1:])}, tags=("users",)),
        },
        "/admin/api/openapi.json": {
            "get": _op("openapi", "This document", {
                "200": _json({"type": "object", "required": ["openapi", "info", "paths"]})},
                tags=("meta",), security=[]),
        },
    }


def _agent_paths() -> dict:
    base = "/admin/api/kcare"
    register_params = ["key", *AGENT_INFO]
    register_json = {"type": "object", "additionalProperties": False, "required": ["code"],
                     "properties": {"code": {"type": "integer", "enum": [0, 1, 2, 3],
                                             "description": "0 registered, 1 key disabled, 2 unknown key, 3 key limit reached"},
                                    "server_id": SERVER_ID}}
    register_text = {"type": "string", "pattern": "^code=[0-3]\n(server_id=[A-Za-z][A-Za-z0-9]{15}\n)?$"}

    def both(op_id, summary, responses, names, description, body_props):
        return {
            "get": _op(op_id + "Get", summary, responses, parameters=_agent_query(names), tags=("agent",), security=[],
                       description=description),
            "post": _op(op_id, summary, responses, body=_body(body_props), tags=("agent",), security=[],
                        description=description),
        }

    register_props = {"key": STR, **AGENT_INFO}
    unregister_props = {"server_id": STR}
    return {
        f"{base}/register_server.json": both(
            "agentRegisterJson", "Agent: register this server", {"200": _json(register_json), **_errors(*AGENT_ERRORS)},
            register_params, "The registration key is the credential. `server_id` only with code 0.", register_props),
        f"{base}/register_server.plain": both(
            "agentRegisterPlain", "Agent: register this server (text answer)",
            {"200": _text(register_text, "`code=C` and, with code 0, `server_id=ID` lines"), **_errors(*AGENT_ERRORS)},
            register_params, "eportal's own text form of register_server.json.", register_props),
        f"{base}/unregister_server.json": both(
            "agentUnregisterJson", "Agent: unregister this server",
            {"200": _json({"type": "boolean"}, "true if it was removed, else false"), **_errors(*AGENT_ERRORS)},
            ["server_id"], "The unguessable server_id is the credential.", unregister_props),
        f"{base}/unregister_server.plain": both(
            "agentUnregisterPlain", "Agent: unregister this server (text answer)",
            {"200": _text({"type": "string", "enum": ["1", "0"]}, "1 if it was removed, else 0"), **_errors(*AGENT_ERRORS)},
            ["server_id"], "eportal's own text form of unregister_server.json.", unregister_props),
        f"{base}/checkin": {
            "post": _op("agentCheckin", "Agent: check in and report server facts", {
                "200": _json(RESULT_OK), **_errors(*AGENT_ERRORS, _404="`unknown-server`")},
                body=_body({"server_id": SERVER_ID, **AGENT_INFO},
                           description="As a form or a JSON object. Without `server_id`, the HTTP Basic user name is used."),
                tags=("agent",), security=[],
                description="400 `bad-server-id` when the server_id is missing or malformed; `bad-param` for a bad field."),
        },
        f"{base}/unregister_by_key.plain": {
            "get": _op("agentUnregisterByKey", "Legacy: remove every server of a key at one address", {
                "200": _text({"type": "string", "pattern": r"^-?\d+$"},
                             "-3 token file absent, -2 token mismatch, -1 internal error, else servers removed"),
                **_errors(*AGENT_ERRORS[:1])},
                parameters=[_query("key", STR, required=True), _query("ip", STR, required=True),
                            _query("token", STR, "Content of `<data dir>/config/api.token`", required=True)],
                tags=("agent",), security=[]),
        },
    }


# --- paths that plugins add ---------------------------------------------------------------------

#: where :func:`add_api_paths` keeps what plugins document, in the app's registry
PLUGIN_PATHS = "eportal.openapi.plugin_paths"
#: the building blocks, for plugins that document their own operations
operation, json_content, error_responses, query_param, body_params, schema_ref = _op, _json, _errors, _query, _body, _ref


def add_api_paths(config, plugin: str, paths: dict, *, schemas: dict | None = None, tags: tuple = ()) -> None:
    """Document the REST API routes a plugin adds (call it from the plugin's ``includeme``, next to the
    routes). Each operation is marked ``x-eportal-plugin: <plugin>``, so the core's tests know which
    operations are the plugin's to exercise."""
    found = config.registry.setdefault(PLUGIN_PATHS, {"paths": {}, "schemas": {}, "tags": []})
    for path, item in paths.items():
        if path in found["paths"]:
            raise ValueError(f"OpenAPI path {path} is documented twice (plugin {plugin})")
        found["paths"][path] = {method: {**op, "x-eportal-plugin": plugin} for method, op in item.items()}
    found["schemas"].update(schemas or {})
    found["tags"].extend(t for t in tags if t not in found["tags"])


def build_document(request) -> dict:
    settings = request.registry.settings
    plugins = request.registry.get(PLUGIN_PATHS) or {"paths": {}, "schemas": {}, "tags": []}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "eportal REST API",
            "version": metadata.version("eportal-core"),
            "description": (
                "The admin REST API of eportal (compatible with ePortal's) and the agent endpoints.\n\n"
                "Parameters come in the query string, as a form or as a JSON object alike. Errors are JSON "
                "`{\"error\": \"<slug>\", \"message\": \"...\"}` with a 4xx status. Other methods answer 405 "
                "`method-not-allowed` with an `Allow` header on the admin paths, 404 `not-found` on the agent paths.\n\n"
                "Authenticate with HTTP Basic (a console user) or an API token (created on the console's "
                "API tokens page) in the `" + settings["eportal.api_key_header"] + "` header. A token has the role "
                "of its owner: `admin` may read and write, `readonly` may only read (403 `forbidden`). Callers "
                "that use the console session cookie must send its CSRF token in `X-CSRF-Token` on writes."),
        },
        "servers": [{"url": request.application_url}],
        "tags": [{"name": "servers"}, {"name": "keys"}, {"name": "users"}, *({"name": t} for t in plugins["tags"]),
                 {"name": "agent"}, {"name": "meta"}],
        "security": [{"basicAuth": []}, {"apiKey": []}, {"sessionCookie": []}],
        "paths": {**_admin_paths(), **plugins["paths"], **_agent_paths()},
        "components": {
            "schemas": {"Server": SERVER_RECORD, "Key": KEY_RECORD, "User": USER_RECORD, "Error": ERROR,
                        **plugins["schemas"]},
            "responses": {f"E{code}": _json(_ref("Error"), text) for code, text in ERRORS.items()},
            "securitySchemes": {
                "basicAuth": {"type": "http", "scheme": "basic", "description": "A console user and password"},
                "apiKey": {"type": "apiKey", "in": "header", "name": settings["eportal.api_key_header"],
                           "description": "An API token"},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": settings["eportal.session.cookie_name"],
                                  "description": "The console's session (writes also need the X-CSRF-Token header)"},
            },
        },
    }
