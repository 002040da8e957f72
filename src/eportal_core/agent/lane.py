"""The agent lane: the agents' most frequent request answered in front of Pyramid's router.

Every server checks in every few minutes, so at fleet scale ``POST /admin/api/kcare/checkin`` is
most of the traffic. Through the router a check-in paid for Pyramid's request object and its
extensions, route matching over every route, four tweens (headers, transaction, console session,
exception views) and the view derivers: as much CPU again as its own work (bench/fleet_bench.py).
None of that serves an agent: it has no session, no CSRF token, and the check-in opens no
transaction (it is recorded in memory and flushed in batches, services/checkins.py).

So views register here, by exact method and path, and are called with a plain WebOb request that
carries the app's registry: the same view function Pyramid would call (it is still declared as a
route, so it is listed, documented and ``route_url`` knows it). The lane adds what the tweens
would have added to such an answer (security headers) and, as the exception view would, turns an
unexpected error into a logged incident and a JSON 500. Any other method or path goes to the
router unchanged.
"""
from __future__ import annotations

import json
import logging

from webob.request import BaseRequest

from ..web.headers import add_missing, static_security_headers
from ..web.incidents import log_incident

log = logging.getLogger(__name__)

#: registry key: {(METHOD, PATH_INFO): view(request) -> Response}
LANE = "eportal.agent_lane"


def add_lane_view(config, method: str, path: str, view) -> None:
    """Answer ``method path`` (exact match on the raw PATH_INFO) with ``view`` ahead of the router.

    The view gets a WebOb request with ``registry`` and nothing else of Pyramid's: no
    ``dbsession`` or transaction, no console session, identity, permission or CSRF check. Only
    public, session-less, read-mostly agent answers belong here."""
    config.registry.setdefault(LANE, {})[(method, path)] = view


class AgentLane:
    """WSGI: the lane's views first, the Pyramid router for everything else."""

    def __init__(self, router, views: dict):
        self.router = router
        self.views = dict(views)
        #: what the lane's views read from a request: WebOb's parsing plus ``registry``
        self.request_class = type("LaneRequest", (BaseRequest,), {"registry": router.registry})

    @property
    def registry(self):
        return self.router.registry

    def __call__(self, environ, start_response):
        view = self.views.get((environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")))
        if view is None:
            return self.router(environ, start_response)
        request = self.request_class(environ)
        try:
            response = view(request)
        except Exception as exc:
            incident = log_incident(request.method, environ.get("PATH_INFO"), exc)
            body = json.dumps({"error": "internal-error", "incident": incident}).encode()
            start_response("500 Internal Server Error", [
                ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"), *static_security_headers(environ.get("wsgi.url_scheme"))])
            return [body]
        add_missing(response.headerlist, static_security_headers(environ.get("wsgi.url_scheme")))
        return response(environ, start_response)


def wrap(router):
    """The router behind a lane when views registered for one (make_app calls this)."""
    views = router.registry.get(LANE)
    return AgentLane(router, views) if views else router
