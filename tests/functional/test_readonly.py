"""The ``readonly`` role sees every page and changes nothing; anonymous users change nothing either.

The mutating routes are discovered from the assembled app (Pyramid's introspector), so that routes
added later, by core issues or by plugins, are walked without touching this file. A view counts as
mutating when its request methods allow POST, PUT, PATCH or DELETE (a view that names no method
allows them all) or when its permission is ``manage``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pyramid.interfaces import IExceptionResponse
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.static import static_view

from eportal_core.permissions import Permission
from eportal_core.plugins import hookimpl
from eportal_core.security import API_PREFIX
from eportal_core.testing import csrf_token, login

from .conftest import COOKIE

MUTATING_METHODS = ("POST", "PUT", "PATCH", "DELETE")
ALL_METHODS = ("GET",) + MUTATING_METHODS

#: (route name, method) pairs that must stay open, each with the reason. Nothing else is exempt.
EXEMPT_FOR_ANONYMOUS = {
    ("login", "POST"): "logging in is how an anonymous user stops being one",
}
EXEMPT_FOR_READONLY = {
    ("login", "POST"): "logging in (again, or as someone else) must work for everybody",
    ("logout", "POST"): "any logged-in user may end their own session; it changes no data",
}
#: The agent protocol (protocol.md §2) is public by design: agents carry no console session; the
#: registration key, the unguessable server_id or the api.token file is the credential, and there is
#: no cookie for a cross-site request to ride on. tests/functional/test_agent_protocol.py covers them.
AGENT_PUBLIC = {
    ("agent_register_json", "POST"): "agents register with a key, not a login",
    ("agent_register_plain", "POST"): "agents register with a key, not a login",
    ("agent_unregister_json", "POST"): "an agent unregisters itself by its server_id",
    ("agent_unregister_plain", "POST"): "an agent unregisters itself by its server_id",
    ("agent_checkin", "POST"): "an agent checks in by its server_id",
}
EXEMPT_FOR_ANONYMOUS.update(AGENT_PUBLIC)
EXEMPT_FOR_READONLY.update(AGENT_PUBLIC)
#: mutating routes without Pyramid's CSRF check, each with the reason
EXEMPT_FROM_CSRF = dict(AGENT_PUBLIC)
#: Pyramid's static views (add_static_view) take no request_method, so they "allow" POST; they serve
#: bundled files and write nothing, and the login page needs them before anyone is logged in.
EXEMPT_VIEW_TYPES = {static_view: "static assets: read-only files, needed before login"}

#: values for the placeholders of route patterns, so the request hits a real object where one exists
PLACEHOLDER_VALUES = {"username": "victim", "subpath": "css/eportal.css"}
DEFAULT_PLACEHOLDER = "1"

#: form fields a mutating view might read: were a refusal missing, these would make the change happen
PAYLOAD = {"username": "intruder", "login": "intruder", "name": "intruder", "password": "Intruder-Pass-99",
           "confirm": "Intruder-Pass-99", "role": "admin", "description": "written by the readonly walk",
           "value": "changed", "enabled": "1"}


@dataclass(frozen=True)
class Target:
    route: str
    pattern: str
    method: str
    path: str
    permission: str
    view: str

    def __str__(self):
        return f"{self.method} {self.path} (route {self.route!r}, view {self.view}, permission {self.permission!r})"


def _methods(value) -> tuple[str, ...]:
    if value is None:
        return ALL_METHODS  # no request_method predicate: the view answers every method
    if isinstance(value, str):
        value = (value,)
    return tuple(m.upper() for m in value)


def _view_permission(entry, registry) -> str:
    perms = [r["value"] for r in entry["related"] if r.category_name == "permissions"]
    if perms:
        return str(perms[0])
    # no explicit permission: the configured default applies
    from pyramid.interfaces import IDefaultPermission
    return str(registry.queryUtility(IDefaultPermission))


def _is_exception_view(view) -> bool:
    context = view["context"]
    if isinstance(context, type) and issubclass(context, BaseException):
        return True
    return context is IExceptionResponse or getattr(context, "isOrExtends", lambda _i: False)(IExceptionResponse)


def _fill(pattern: str) -> str:
    def value(match):
        return PLACEHOLDER_VALUES.get(match.group(1) or match.group(2), DEFAULT_PLACEHOLDER)
    path = re.sub(r"\{(\w+)(?::[^}]*)?\}|\*(\w+)", value, pattern)
    return path if path.startswith("/") else "/" + path


def discover(app) -> tuple[list[Target], list[Target], list[str]]:
    """(mutating targets, read-only GET pages, problems) of the assembled ``app``."""
    registry = app.registry
    introspector = registry.introspector
    routes = {e["introspectable"]["name"]: e["introspectable"] for e in introspector.get_category("routes")}
    mutating, pages, problems = [], [], []
    for entry in introspector.get_category("views"):
        view = entry["introspectable"]
        route_name = view["route_name"]
        if route_name is None:
            if not _is_exception_view(view):
                problems.append(f"view {view['callable']!r} has no route and is no exception view: walk it too")
            continue
        if isinstance(view["callable"], tuple(EXEMPT_VIEW_TYPES)):
            continue
        route = routes[route_name]
        methods = _methods(view["request_methods"])
        if route["request_methods"] is not None:
            methods = tuple(m for m in methods if m in _methods(route["request_methods"]))
        permission = _view_permission(entry, registry)
        name = getattr(view["callable"], "__qualname__", repr(view["callable"]))
        path = _fill(route["pattern"])
        for method in methods:
            target = Target(route_name, route["pattern"], method, path, permission, name)
            if method in MUTATING_METHODS or permission == Permission.MANAGE:
                mutating.append(target)
            elif method == "GET" and permission != NO_PERMISSION_REQUIRED and "{" not in route["pattern"]:
                pages.append(target)
    return mutating, pages, problems


def _request(client, target: Target, token: str):
    if target.method == "GET":
        return client.get(target.path, status="*", expect_errors=True)
    params = dict(PAYLOAD, csrf_token=token)
    call = getattr(client, target.method.lower())
    return call(target.path, params, status="*", expect_errors=True)


def _refused_anonymous(target: Target, res) -> str | None:
    """None when ``res`` is a refusal for an anonymous user, else what is wrong."""
    if target.path.startswith(API_PREFIX):
        if res.status_int == 401 and res.json.get("error") == "unauthorized":
            return None
    elif res.status_int in (302, 303) and "/admin/login" in res.headers.get("Location", ""):
        return None
    return f"answered {res.status} {res.headers.get('Location', '')}".strip()


def _refused_readonly(target: Target, res) -> str | None:
    if res.status_int != 403:
        return f"answered {res.status} {res.headers.get('Location', '')}".strip()
    if target.path.startswith(API_PREFIX):
        return None if res.json.get("error") == "forbidden" else f"JSON {res.json!r}"
    return None if "read-only" in res.text else "403 without the read-only explanation"


def walk(client, targets, token, refused, exempt) -> list[str]:
    """Request every target; what was not refused comes back as a line each. A route whose extra
    predicates (header, accept, ...) a plain form post does not meet shows up here as a 404: give
    the walk what it needs rather than exempting it."""
    violations = []
    for target in targets:
        if (target.route, target.method) in exempt:
            continue
        res = _request(client, target, token)
        problem = refused(target, res)
        if problem:
            violations.append(f"{target}: {problem}")
        assert "Traceback" not in res.text
    return violations


def walk_api_with_basic_auth(client, targets, username, password) -> list[str]:
    """The REST API also takes HTTP Basic credentials: a readonly user is refused there the same way."""
    api = [t for t in targets if t.path.startswith(API_PREFIX)]
    client.reset()
    client.authorization = ("Basic", (username, password))
    try:
        return walk(client, api, "", _refused_readonly, EXEMPT_FOR_READONLY)
    finally:
        client.authorization = None


def _anonymous_token(client) -> str:
    """A valid CSRF token of an anonymous session: a refusal must come from authorization, not from CSRF."""
    return client.get("/admin/login").forms[0]["csrf_token"].value


# --- the walk ---------------------------------------------------------------------------------

def test_discovery_finds_the_known_mutating_routes(app):
    mutating, pages, problems = discover(app)
    assert problems == []
    found = {(t.route, t.method) for t in mutating}
    # the core's own: if discovery stops seeing these, it sees nothing and the walk proves nothing
    assert {("user_add", "GET"), ("user_add", "POST"), ("user_delete", "POST"), ("user_role", "POST"),
            ("user_password", "POST"), ("logout", "POST"), ("login", "POST")} <= found
    assert ("health", "GET") not in found and ("login", "GET") not in found
    assert {("home", "GET"), ("users", "GET")} <= {(t.route, t.method) for t in pages}
    # every exemption names a route that exists (a renamed route must not leave a stale hole)
    assert {route for route, _ in EXEMPT_FOR_ANONYMOUS | EXEMPT_FOR_READONLY} <= {t.route for t in mutating}
    assert set(EXEMPT_FROM_CSRF) <= {(t.route, t.method) for t in mutating}


def test_readonly_is_refused_every_mutating_route_and_nothing_changes(testapp, make_user, snapshot):
    make_user("root", "Root-Secret-1")
    make_user("victim", "Victim-Secret-1")
    make_user("rita", "Rita-Secret-1", readonly=True)
    login(testapp, "rita", "Rita-Secret-1")
    token = csrf_token(testapp)
    mutating, _, _ = discover(testapp.app)
    before = snapshot()
    violations = walk(testapp, mutating, token, _refused_readonly, EXEMPT_FOR_READONLY)
    assert violations == []
    assert "rita" in testapp.get("/admin/").text  # the refusals did not log her out
    assert walk_api_with_basic_auth(testapp, mutating, "rita", "Rita-Secret-1") == []
    assert snapshot() == before


def test_anonymous_is_refused_every_mutating_route_and_nothing_changes(testapp, make_user, snapshot):
    make_user("root", "Root-Secret-1")
    make_user("victim", "Victim-Secret-1")
    token = _anonymous_token(testapp)
    mutating, _, _ = discover(testapp.app)
    before = snapshot()
    violations = walk(testapp, mutating, token, _refused_anonymous, EXEMPT_FOR_ANONYMOUS)
    assert violations == []
    assert snapshot() == before


def test_every_mutating_route_requires_the_csrf_token_even_for_admins(testapp, make_user, snapshot):
    make_user("victim", "Victim-Secret-1")
    make_user("alice", "Alice-Secret-1")
    login(testapp, "alice", "Alice-Secret-1")
    mutating, _, _ = discover(testapp.app)
    before = snapshot()
    checked = 0
    for target in mutating:
        if target.method == "GET" or (target.route, target.method) in EXEMPT_FROM_CSRF:
            continue
        for token in ("", "forged-token"):
            res = _request(testapp, target, token)
            assert res.status_int == 400, f"{target} without a valid CSRF token answered {res.status}"
            checked += 1
    assert checked >= 10
    assert snapshot() == before
    assert "alice" in testapp.get("/admin/").text


def test_readonly_sees_every_page(testapp, make_user):
    make_user("root", "Root-Secret-1")
    make_user("rita", "Rita-Secret-1", readonly=True)
    login(testapp, "rita", "Rita-Secret-1")
    _, pages, _ = discover(testapp.app)
    assert pages
    for target in pages:
        res = testapp.get(target.path, status="*")
        if res.status_int in (302, 303):  # e.g. /admin -> /admin/: must stay inside the console
            assert res.headers["Location"].startswith("http://eportal.test/admin"), target
            res = res.follow(status="*")
        assert res.status_int == 200, f"{target} answered {res.status} to a readonly user"


def test_readonly_sees_no_manage_controls(testapp, make_user):
    make_user("root", "Root-Secret-1")
    make_user("rita", "Rita-Secret-1", readonly=True)
    login(testapp, "rita", "Rita-Secret-1")
    page = testapp.get("/admin/users/")
    assert "root" in page.text
    actions = {form.action for form in page.forms.values()}
    assert actions == {"http://eportal.test/admin/logout"}, actions
    assert "/admin/users/add" not in page.text


# --- the walk itself catches what it must ------------------------------------------------------

class ExtraRoutes:
    """A plugin adding routes after the core's: one guarded properly, one left open by mistake."""

    def __init__(self, open_by_mistake: bool):
        self.open_by_mistake = open_by_mistake

    @hookimpl
    def eportal_includeme(self, config):
        from pyramid.response import Response

        from eportal_core.models import AuditEvent

        def change(request):
            request.dbsession.add(AuditEvent(actor="plugin", action="plugin.change"))
            return Response("changed")

        config.add_route("plugin_guarded", "/admin/plugin/things/{thing_id}/delete")
        config.add_view(change, route_name="plugin_guarded", request_method="POST", permission=Permission.MANAGE)
        config.add_route("plugin_api", "/admin/api/plugin/things")
        config.add_view(change, route_name="plugin_api", request_method=("PUT", "DELETE"),
                        permission=Permission.MANAGE, require_csrf=False)
        if self.open_by_mistake:
            config.add_route("plugin_open", "/admin/plugin/oops")
            config.add_view(change, route_name="plugin_open")  # no method, default permission "view"


def test_routes_added_by_plugins_are_walked(make_testapp, make_user, snapshot):
    client = make_testapp(extra_plugins={"extra_routes": ExtraRoutes(open_by_mistake=False)})
    mutating, _, problems = discover(client.app)
    assert problems == []
    found = {(t.route, t.method, t.path) for t in mutating}
    assert ("plugin_guarded", "POST", "/admin/plugin/things/1/delete") in found
    assert {("plugin_api", "PUT", "/admin/api/plugin/things"), ("plugin_api", "DELETE", "/admin/api/plugin/things")} <= found
    make_user("root", "Root-Secret-1")
    make_user("rita", "Rita-Secret-1", readonly=True)
    before = snapshot()
    assert walk(client, mutating, _anonymous_token(client), _refused_anonymous, EXEMPT_FOR_ANONYMOUS) == []
    assert snapshot() == before
    login(client, "rita", "Rita-Secret-1")
    token = csrf_token(client)
    before = snapshot()
    assert walk(client, mutating, token, _refused_readonly, EXEMPT_FOR_READONLY) == []
    assert walk_api_with_basic_auth(client, mutating, "rita", "Rita-Secret-1") == []
    assert snapshot() == before


def test_the_walk_reports_a_route_left_open(make_testapp, make_user):
    client = make_testapp(extra_plugins={"extra_routes": ExtraRoutes(open_by_mistake=True)})
    mutating, _, _ = discover(client.app)
    make_user("root", "Root-Secret-1")
    make_user("rita", "Rita-Secret-1", readonly=True)
    login(client, "rita", "Rita-Secret-1")
    violations = walk(client, mutating, csrf_token(client), _refused_readonly, EXEMPT_FOR_READONLY)
    assert violations and all("plugin_open" in v for v in violations)
    assert {v.split(" ", 1)[0] for v in violations} == set(MUTATING_METHODS)
    assert COOKIE in client.cookies


class ExtraNavigation:
    @hookimpl
    def eportal_navigation(self, request):
        from eportal_core.web.ui import NavItem
        return [NavItem("Add someone", "user_add", order=950, permission=Permission.MANAGE),
                NavItem("Everyone", "users", order=960)]


def test_navigation_hides_entries_the_user_may_not_use(make_testapp, make_user):
    client = make_testapp(extra_plugins={"extra_nav": ExtraNavigation()})
    make_user("root", "Root-Secret-1")
    make_user("rita", "Rita-Secret-1", readonly=True)
    login(client, "root", "Root-Secret-1")
    page = client.get("/admin/")
    assert "Add someone" in page.text and "Everyone" in page.text
    client.reset()
    login(client, "rita", "Rita-Secret-1")
    page = client.get("/admin/")
    assert "Everyone" in page.text
    assert "Add someone" not in page.text
