"""The OpenAPI description of this plugin's REST routes, added to ``/admin/api/openapi.json`` through
``eportal_core.web.openapi.add_api_paths`` (tests/test_feeds_api.py validates real answers against it)."""
from __future__ import annotations

from eportal_core.api import (
    MAX_DEPLOY_AFTER,
    READ_ERRORS,
    RESULT_OK,
    STATUSES,
    STR,
    WRITE_ERRORS,
    body_params,
    error_responses,
    json_content,
    operation,
    query_param,
    schema_ref,
)

FEED_NAME = {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"}
FEED_RECORD = {
    "type": "object", "additionalProperties": False,
    "required": ["name", "auto", "deploy_after", "channel", "keys"],
    "properties": {
        "name": FEED_NAME,
        "auto": {"type": "boolean", "description": "Auto update: enable new patchsets by itself"},
        "deploy_after": {"type": "integer", "minimum": 0, "maximum": MAX_DEPLOY_AFTER,
                         "description": "Hours after a patchset arrived on this portal before an auto feed enables it"},
        "channel": {"type": "string"},
        "keys": {"type": "integer", "minimum": 0, "description": "Keys on this feed (eportal's own)"},
    },
}
PATCHSET_STATE = {
    "type": "object", "additionalProperties": False, "required": ["patchset", "status"],
    "properties": {
        "patchset": {"type": "string"},
        "status": {"type": "string", "enum": list(STATUSES), "description":
                   "`enabled`; `disabled` (rolled back on this feed); `undeployed` (downloaded, never enabled here); "
                   "`not-downloaded` (known upstream only); `blocked` (withdrawn upstream: never enabled)"},
    },
}


def _result(schema: dict) -> dict:
    return {"type": "object", "additionalProperties": False, "required": ["result"], "properties": {"result": schema}}


def openapi_paths() -> dict:
    feed_body = {
        "name": {**FEED_NAME, "description": "The feed; created if it does not exist"},
        "auto": {"type": ["boolean", "string"], "description": "true or false (also 1/0, yes/no, on/off); "
                                                               "absent keeps the feed's value (a new feed: false)"},
        "deploy_after": {"type": ["integer", "string"], "description":
                         f"Hours, 0 (at once) to {MAX_DEPLOY_AFTER}; absent keeps the feed's value (a new feed: 0)"},
        "channel": {"type": "string", "maxLength": 64, "description": "Absent keeps the feed's value"},
    }
    manage_body = {
        "patchset": {"type": "string", "description": "A patchset known to this portal"},
        "feed": {"type": ["string", "array"], "items": {"type": "string"},
                 "description": "Repeatable (`feed=a&feed=b`, or a JSON list); default `main`"},
        "action": {"type": "string", "enum": ["enable", "disable", "enable-upto", "undeploy-downto"]},
    }
    return {
        "/admin/api/feeds/": {
            "get": operation("listFeeds", "List feeds", {
                "200": json_content(_result({"type": "array", "items": schema_ref("Feed")}), "`main` first, then by name"),
                **error_responses(*READ_ERRORS[1:])}, tags=("feeds",)),
            "post": operation("saveFeed", "Create a feed, or update it if it exists", {
                "200": json_content(_result(schema_ref("Feed"))),
                **error_responses(*WRITE_ERRORS, "409")}, body=body_params(feed_body, ("name",)), tags=("feeds",),
                description="Idempotent: parameters left out keep the existing feed's values. `main` may change its "
                            "`auto`, `deploy_after` and `channel`. An auto feed enables each patchset `deploy_after` "
                            "hours after it was downloaded to this portal (0 = at once), in deploy order."),
        },
        "/admin/api/feeds/{name}": {
            "delete": operation("deleteFeed", "Delete a feed; its keys move to main", {
                "200": json_content(RESULT_OK),
                **error_responses(*WRITE_ERRORS, _400="`cannot-delete-main`, or bad parameters")}, tags=("feeds",),
                parameters=[{"name": "name", "in": "path", "required": True, "schema": STR}],
                description="Deleting a feed that does not exist is not an error. `main` is never deleted."),
        },
        "/admin/api/patchsets/": {
            "get": operation("listPatchsets", "Patchsets and their status on a feed", {
                "200": json_content(_result({"type": "array", "items": PATCHSET_STATE}),
                                    "Every patchset known to this portal, oldest first (the deploy order)"),
                **error_responses(*READ_ERRORS, _400="`unknown-feed`, or bad parameters")}, tags=("patchsets",),
                parameters=[query_param("feed", STR, "Default `main`"),
                            query_param("product", STR, "Only this product's patchsets (e.g. `kernel`)")]),
        },
        "/admin/api/patchsets/manage": {
            "post": operation("managePatchsets", "Enable or disable a patchset on feeds, in deploy order", {
                "200": json_content(RESULT_OK),
                **error_responses(*WRITE_ERRORS, _400="`unknown-feed`, `patchset-blocked`, `not-downloaded`, or "
                                                      "bad parameters",
                                  _404="`unknown-patchset`")},
                body=body_params(manage_body, ("patchset", "action")), tags=("patchsets",),
                description="Nothing is ever enabled out of order. `enable` and `enable-upto` are the same: they "
                            "enable the patchset and every downloaded, non-blocked patchset before it (\"deploy "
                            "this patch, and all before it\"). `disable` and `undeploy-downto` are the same: they "
                            "disable the patchset and every patchset after it (\"roll back this patch, and all "
                            "after it\"). A blocked patchset cannot be enabled. With several feeds, either all "
                            "change or none."),
        },
    }
