"""``GET /admin/ping``: ``ok`` as text/plain, the cheapest answer the app can give.

A liveness probe for load balancers (is the process up and serving?), and the bare route that
``bench/fleet_bench.py`` compares the agent check-in path with. It touches no database and no
session (``/admin/health`` is the readiness check that queries the database).
"""
import re

from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config


# public: a load balancer carries no credentials, and the answer reveals nothing
@view_config(route_name="ping", request_method="GET", permission=NO_PERMISSION_REQUIRED)
def ping(request):
    response = Response(b"ok", content_type="text/plain", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


def includeme(config):
    config.add_route("ping", "/admin/ping")
    # no database, so no transaction either (pyramid_tm's activate hook, see db.wants_transaction)
    config.registry.setdefault("eportal.transactionless", []).append(re.compile(r"^/admin/ping$"))
