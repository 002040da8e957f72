"""The OpenAPI document at /admin/api/openapi.json says what the code does: every API route of the
assembled app is documented (and nothing else), and real answers of every documented operation,
made through the app, validate against the document's response schemas (jsonschema, 2020-12)."""
from __future__ import annotations

import base64
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from eportal_core.security import API_PREFIX
from eportal_core.services import agents
from eportal_core.services import keys as keys_service
from eportal_core.services.tokens import create_token

HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "trace"}
DOC_URI = "urn:eportal:openapi"


def pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class Checker:
    """Validates answers against the document and remembers which (path, method, status) it saw."""

    def __init__(self, doc: dict):
        self.doc = doc
        self.registry = Registry().with_resource(DOC_URI, Resource.from_contents(doc, default_specification=DRAFT202012))
        self.seen: set[tuple[str, str, str]] = set()

    def response_spec(self, path: str, method: str, status: str) -> tuple[dict, list[str]]:
        responses = self.doc["paths"][path][method]["responses"]
        assert status in responses, f"{method.upper()} {path} answered {status}, which the document does not list"
        spec, where = responses[status], ["paths", path, method, "responses", status]
        if "$ref" in spec:
            name = spec["$ref"].rsplit("/", 1)[1]
            spec, where = self.doc["components"]["responses"][name], ["components", "responses", name]
        return spec, where

    def check(self, res, path: str, method: str):
        status = str(res.status_int)
        spec, where = self.response_spec(path, method, status)
        ctype = res.content_type
        assert ctype in spec["content"], f"{method.upper()} {path} {status}: {ctype} is not documented"
        ref = {"$ref": f"{DOC_URI}#/" + pointer(*where, "content", ctype, "schema")}
        instance = res.json if ctype == "application/json" else res.text
        errors = sorted(Draft202012Validator(ref, registry=self.registry).iter_errors(instance), key=str)
        assert not errors, f"{method.upper()} {path} {status}: " + "; ".join(e.message for e in errors[:3])
        self.seen.add((path, method, status))
        return res


@pytest.fixture
def doc(testapp):
    res = testapp.get("/admin/api/openapi.json")
    assert res.content_type == "application/json"
    return res.json


def documented_operations(doc) -> set[tuple[str, str]]:
    return {(path, method) for path, item in doc["paths"].items() for method in item if method in HTTP_METHODS}


def plugin_operations(doc) -> set[tuple[str, str]]:
    """Operations a plugin documented through ``openapi.add_api_paths``."""
    return {(path, method) for path, item in doc["paths"].items() for method, op in item.items()
            if method in HTTP_METHODS and "x-eportal-plugin" in op}


def routed_operations(app) -> set[tuple[str, str]]:
    """(pattern, method) of every view on an API route that names its methods (405 fallbacks excluded)."""
    introspector = app.registry.introspector
    patterns = {e["introspectable"]["name"]: e["introspectable"]["pattern"] for e in introspector.get_category("routes")}
    found = set()
    for entry in introspector.get_category("views"):
        view = entry["introspectable"]
        pattern = patterns.get(view["route_name"])
        if pattern is None or not pattern.startswith(API_PREFIX):
            continue
        if getattr(view["callable"], "__name__", "") == "method_not_allowed" or view["request_methods"] is None:
            continue  # a fallback that answers 405 to methods the route does not serve
        methods = view["request_methods"]
        for method in (methods,) if isinstance(methods, str) else methods:
            if method != "HEAD":  # implied by GET
                found.add((pattern, method.lower()))
    return found


def test_every_api_route_is_documented_and_nothing_else(app, doc):
    routed = routed_operations(app)
    assert ("/admin/api/servers", "get") in routed and ("/admin/api/kcare/checkin", "post") in routed
    documented = documented_operations(doc)
    assert routed - documented == set(), "API routes missing from the document"
    assert documented - routed == set(), "documented operations that no route serves"
    route_patterns = {e["introspectable"]["pattern"] for e in app.registry.introspector.get_category("routes")}
    api_patterns = {p for p in route_patterns if p.startswith(API_PREFIX)}
    assert api_patterns == set(doc["paths"])


def test_the_document_is_well_formed(doc, testapp):
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["servers"] == [{"url": "http://eportal.test"}]
    schemes = doc["components"]["securitySchemes"]
    assert schemes["basicAuth"] == {"type": "http", "scheme": "basic", "description": schemes["basicAuth"]["description"]}
    assert (schemes["apiKey"]["type"], schemes["apiKey"]["in"], schemes["apiKey"]["name"]) == ("apiKey", "header", "X-Api-Key")
    record = doc["components"]["schemas"]["Server"]
    assert set(record["required"]) == set(record["properties"]) == {
        "id", "ip", "hostname", "key", "feed", "registered", "checkin", "updated", "euname", "release", "kernel_id",
        "patch_level", "patch_type", "tags", "uptime", "version", "virt", "kcare_version", "distro", "distro_version",
        "machine", "processor", "status", "latest_level"}
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    registry = Registry().with_resource(DOC_URI, Resource.from_contents(doc, default_specification=DRAFT202012))
    op_ids = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            op_ids.append(op["operationId"])
            assert op["responses"] and op["summary"], (path, method)
            named = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert named == {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}, (path, method)
            for param in op.get("parameters", []):
                Draft202012Validator.check_schema(param["schema"])
            for media in op.get("requestBody", {}).get("content", {}).values():
                Draft202012Validator.check_schema(media["schema"])
            for status, spec in op["responses"].items():
                assert status.isdigit() and 200 <= int(status) < 500, (path, method, status)
                if "$ref" in spec:  # every reference resolves
                    registry.resolver(DOC_URI).lookup(DOC_URI + spec["$ref"])
                    continue
                for ctype, media in spec["content"].items():
                    Draft202012Validator.check_schema(media["schema"])
                    # and the schema's own references resolve (a validation run walks them)
                    Draft202012Validator({"$ref": f"{DOC_URI}#/" + pointer("paths", path, method, "responses", status,
                                                                          "content", ctype, "schema")},
                                         registry=registry).is_valid(None)
    assert len(op_ids) == len(set(op_ids)), "operationIds must be unique"


def test_the_document_is_public(testapp):
    assert testapp.get("/admin/api/openapi.json").json["paths"]


def _basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_real_answers_match_the_document(testapp, doc, make_user, dbsession, make_testapp, tmp_path):
    c = Checker(doc)
    alice, _ = make_user("alice", "Alice-Secret-1")
    rita, _ = make_user("rita", "Rita-Secret-1", readonly=True)
    admin = {"X-Api-Key": create_token(dbsession, alice, "a")[0]}
    ro = {"X-Api-Key": create_token(dbsession, rita, "r")[0]}
    keys_service.create_key(dbsession, "k1", actor="test")
    keys_service.create_key(dbsession, "one", server_limit=1, actor="test")
    full = agents.register(dbsession, "k1", hostname="web1", ip="10.0.0.1", actor="test", info={
        "euname": "5.14.0-1", "release": "5.14.0-1.el9", "kernel_id": "c" * 40, "patch_level": 2, "patch_type": "extra",
        "uptime": 3600, "version": "#1 SMP", "virt": "kvm", "kcare_version": "2.80", "distro": "rhel",
        "distro_version": "9.3", "machine": "x86_64", "processor": "x86_64", "tags": "env:prod"}).server
    dbsession.commit()
    sid = full.server_id

    S, K = "/admin/api/servers", "/admin/api/keys/"
    # servers
    c.check(testapp.get(S, headers=admin), S, "get")
    c.check(testapp.get(S, {"only_count": "true"}, headers=admin), S, "get")
    c.check(testapp.get(S, {"limit": "0"}, headers=admin, status=400), S, "get")
    c.check(testapp.get(S, {"key": "nope"}, headers=admin, status=400), S, "get")
    c.check(testapp.get(S, status=401), S, "get")
    c.check(testapp.get(S, headers=_basic("rita", "Rita-Secret-1")), S, "get")
    c.check(testapp.delete(S + "?checkin_age=30", headers=admin), S, "delete")
    c.check(testapp.delete(S + "?checkin_age=0", headers=admin, status=400), S, "delete")
    c.check(testapp.delete(S + "?checkin_age=30", headers=ro, status=403), S, "delete")
    c.check(testapp.delete(S + "?checkin_age=30", status=401), S, "delete")
    # register
    R = "/admin/api/register"
    c.check(testapp.post(R, {"key": "one", "hostname": "h"}, headers=admin), R, "post")
    c.check(testapp.post(R, {"key": "one"}, headers=admin, status=400), R, "post")
    c.check(testapp.post(R, {"key": "nope"}, headers=admin, status=400), R, "post")
    c.check(testapp.post(R, {"key": "k1"}, headers=ro, status=403), R, "post")
    c.check(testapp.post(R, {"key": "k1"}, status=401), R, "post")
    c.check(testapp.post(R, b"<x/>", headers={**admin, "Content-Type": "text/xml"}, status=415), R, "post")
    c.check(testapp.post(R, b"k=" + b"x" * (1024 * 1024), headers=admin,
                         content_type="application/x-www-form-urlencoded", status=413), R, "post")
    # delete_server, set_tags
    D, T = "/admin/api/delete_server", "/admin/api/set_tags"
    c.check(testapp.post(D, {"hostname": "h"}, headers=admin), D, "post")
    c.check(testapp.post(D, {}, headers=admin, status=400), D, "post")
    c.check(testapp.post(T, {"server_id": sid, "tags": "env:dev;x"}, headers=admin), T, "post")
    c.check(testapp.post(T, {"server_id": "Nonexistent12345", "tags": ""}, headers=admin, status=404), T, "post")
    c.check(testapp.post_json(T, [1], headers=admin, status=400), T, "post")
    # the full record, after the tags changed
    res = c.check(testapp.get(S, {"server_id": sid}, headers=admin), S, "get")
    assert res.json["result"][0]["tags"] == "env:dev;x" and res.json["result"][0]["uptime"] == 3600
    # keys, users
    c.check(testapp.get(K, headers=ro), K, "get")
    c.check(testapp.get(K, status=401), K, "get")
    c.check(testapp.post(K, {"key": "k2", "note": "n"}, headers=admin), K, "post")
    c.check(testapp.post(K, {"key": "k2", "server_limit": "x"}, headers=admin, status=400), K, "post")
    c.check(testapp.post(K, {"key": "k3"}, headers=ro, status=403), K, "post")
    c.check(testapp.delete("/admin/api/keys/k2", headers=admin), "/admin/api/keys/{key}", "delete")
    c.check(testapp.delete("/admin/api/keys/absent", headers=admin), "/admin/api/keys/{key}", "delete")
    c.check(testapp.delete("/admin/api/keys/k1", headers=ro, status=403), "/admin/api/keys/{key}", "delete")
    c.check(testapp.get("/admin/api/users/", headers=admin), "/admin/api/users/", "get")
    c.check(testapp.get("/admin/api/users/", status=401), "/admin/api/users/", "get")
    c.check(testapp.get("/admin/api/openapi.json"), "/admin/api/openapi.json", "get")

    # the agent endpoints
    A = "/admin/api/kcare/"
    new_id = c.check(testapp.post(A + "register_server.json", {"key": "k1", "hostname": "agent1"}),
                     A + "register_server.json", "post").json["server_id"]
    c.check(testapp.get(A + "register_server.json", {"key": "nope"}), A + "register_server.json", "get")
    c.check(testapp.get(A + "register_server.json", {"key": "k1", "patch_level": "x"}, status=400),
            A + "register_server.json", "get")
    plain_id = c.check(testapp.get(A + "register_server.plain", {"key": "k1"}), A + "register_server.plain", "get") \
        .text.split("server_id=")[1].strip()
    c.check(testapp.post(A + "register_server.plain", {"key": "nope"}), A + "register_server.plain", "post")
    c.check(testapp.post(A + "checkin", {"server_id": new_id, "hostname": "agent1b", "patch_level": "1"}),
            A + "checkin", "post")
    c.check(testapp.post(A + "checkin", {"server_id": "Nonexistent12345"}, status=404), A + "checkin", "post")
    c.check(testapp.post(A + "checkin", {"server_id": "bad"}, status=400), A + "checkin", "post")
    c.check(testapp.post(A + "unregister_server.json", {"server_id": new_id}), A + "unregister_server.json", "post")
    c.check(testapp.get(A + "unregister_server.json", {"server_id": new_id}), A + "unregister_server.json", "get")
    c.check(testapp.post(A + "unregister_server.plain", {"server_id": plain_id}), A + "unregister_server.plain", "post")
    c.check(testapp.get(A + "unregister_server.plain", {"server_id": plain_id}), A + "unregister_server.plain", "get")
    U = A + "unregister_by_key.plain"
    c.check(testapp.get(U + "?key=k1&ip=10.0.0.1&token=x&bad=%ff", status=400), U, "get")
    # with a token file: an app of its own, so the shared app's data directory stays untouched
    other = make_testapp()
    token_file = tmp_path / "data" / "config" / "api.token"
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text("legacy-secret\n")
    c.check(other.get(U, {"key": "k1", "ip": "10.0.0.1", "token": "wrong"}), U, "get")
    res = c.check(other.get(U, {"key": "k1", "ip": "10.0.0.1", "token": "legacy-secret"}), U, "get")
    assert res.text.strip() == "1"
    token_file.unlink()
    c.check(other.get(U, {"key": "k1", "ip": "10.0.0.1", "token": "x"}), U, "get")  # -3: no token file

    # every documented operation of the core was seen answering 200, and its documented errors were
    # exercised; the operations plugins add (marked x-eportal-plugin) are their own tests' to exercise
    ok = {(path, method) for path, method, status in c.seen if status == "200"}
    assert ok == documented_operations(doc) - plugin_operations(doc)
    statuses = {status for _, _, status in c.seen}
    assert {"200", "400", "401", "403", "404", "413", "415"} <= statuses


def test_the_document_follows_the_token_header_setting(make_testapp):
    client = make_testapp(**{"eportal.api_key_header": "X-Eportal-Token"})
    doc = client.get("/admin/api/openapi.json").json
    assert doc["components"]["securitySchemes"]["apiKey"]["name"] == "X-Eportal-Token"
    assert "X-Eportal-Token" in doc["info"]["description"]


def test_data_dir_fixture_is_what_the_agent_reads(make_testapp, tmp_path):
    """Guards the token-file step above: the second app's data directory is the test's tmp_path/data."""
    client = make_testapp()
    assert Path(client.app.registry.settings["eportal.data_dir"]) == tmp_path / "data"
