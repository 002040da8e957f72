"""Helpers shared by the eportal-feeds tests (each test module imports what it uses; the fixtures
are in conftest.py)."""
from __future__ import annotations

import base64
from datetime import datetime

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy import select

from eportal_core.api import Feed, deploy
from eportal_core.api import feeds as feeds_service

HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "trace"}


def arrive(db, patchsets, when: datetime) -> None:
    """Say the patchsets arrived on this portal at ``when`` (the clock the rules read)."""
    for p in patchsets:
        p.downloaded = when
    db.flush()


def add_feed(db, name: str, *, auto: bool = False, deploy_after: int = 0) -> Feed:
    return feeds_service.create_feed(db, name, auto=auto, deploy_after=deploy_after, actor="test")


def feed(db, name: str) -> Feed:
    return db.scalar(select(Feed).where(Feed.name == name))


def states(db, name: str) -> dict[str, str]:
    db.expire_all()
    return {p.name: s for p, s in deploy.status(db, feed(db, name))}


def enabled(db, name: str) -> list[str]:
    return [p for p, s in states(db, name).items() if s == deploy.ENABLED]


def basic(username: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


class Checker:
    """Validates API answers against /admin/api/openapi.json (jsonschema 2020-12), remembering what it saw."""

    URI = "urn:eportal:openapi"

    def __init__(self, doc: dict):
        self.doc = doc
        self.registry = Registry().with_resource(self.URI, Resource.from_contents(doc, default_specification=DRAFT202012))
        self.seen: set[tuple[str, str, str]] = set()

    def check(self, res, path: str, method: str):
        status = str(res.status_int)
        responses = self.doc["paths"][path][method]["responses"]
        assert status in responses, f"{method.upper()} {path} answered {status}, which the document does not list"
        where = ["paths", path, method, "responses", status]
        spec = responses[status]
        if "$ref" in spec:
            name = spec["$ref"].rsplit("/", 1)[1]
            spec, where = self.doc["components"]["responses"][name], ["components", "responses", name]
        assert res.content_type in spec["content"], f"{method.upper()} {path} {status}: {res.content_type}"
        pointer = "/".join(p.replace("~", "~0").replace("/", "~1") for p in [*where, "content", res.content_type, "schema"])
        errors = list(Draft202012Validator({"$ref": f"{self.URI}#/{pointer}"}, registry=self.registry).iter_errors(res.json))
        assert not errors, f"{method.upper()} {path} {status}: " + "; ".join(e.message for e in errors[:3])
        self.seen.add((path, method, status))
        return res


def plugin_operations(doc: dict, plugin: str = "feeds") -> set[tuple[str, str]]:
    return {(path, method) for path, item in doc["paths"].items() for method, op in item.items()
            if method in HTTP_METHODS and op.get("x-eportal-plugin") == plugin}
