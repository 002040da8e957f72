"""The one parameter reader behind the agent endpoints and the REST API refuses the same bad
bodies the same way (web/params.read_params)."""
import base64

import pytest


@pytest.fixture
def admin_auth(make_user):
    user, password = make_user("paramadmin")
    return {"Authorization": "Basic " + base64.b64encode(f"paramadmin:{password}".encode()).decode()}


DEEP = b"[" * 30000 + b"]" * 30000  # under the agent's 64 KiB limit, far past the JSON parser's depth


@pytest.mark.parametrize("body, ctype, status, slug", [
    (DEEP, "application/json", 400, "bad-json"),
    (b"[1, 2]", "application/json", 400, "bad-json"),
    (b'{"a": "\xff"}', "application/json", 400, "bad-encoding"),
    (b"a=%ff", "application/x-www-form-urlencoded", 400, "bad-encoding"),
    (b"<x/>", "application/xml", 415, "unsupported-media-type"),
])
def test_agent_and_api_refuse_alike(testapp, admin_auth, body, ctype, status, slug):
    agent = testapp.post("/admin/api/kcare/checkin", body, content_type=ctype, status=status)
    api = testapp.post("/admin/api/set_tags", body, content_type=ctype, headers=admin_auth, status=status)
    assert agent.json["error"] == api.json["error"] == slug
