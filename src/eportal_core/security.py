"""The one security policy: the console session everywhere; on the REST API also an API token
(header ``eportal.api_key_header``) or HTTP Basic with a console user. Agents are not users: their
endpoints under ``/admin/api/kcare`` are public. Views name a :class:`Permission`; the role decides."""
from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass

from pyramid.csrf import SessionCSRFStoragePolicy
from pyramid.security import NO_PERMISSION_REQUIRED, Allowed, Denied

from .permissions import ROLE_PERMISSIONS, Permission

log = logging.getLogger(__name__)

API_PREFIX = "/admin/api/"
#: the agent endpoints live under the API prefix but never take console credentials
AGENT_PREFIX = "/admin/api/kcare"


@dataclass(frozen=True)
class Identity:
    user_id: int
    username: str
    role: str
    #: "session", "basic" or "token"
    via: str

    @property
    def readonly(self) -> bool:
        return self.role == "readonly"


class SecurityPolicy:
    def identity(self, request) -> Identity | None:
        # cached per request: Basic auth costs one argon2 verification
        if "_eportal_identity" not in request.__dict__:
            request.__dict__["_eportal_identity"] = self._find_identity(request)
        return request.__dict__["_eportal_identity"]

    def _find_identity(self, request) -> Identity | None:
        # the raw WSGI path: request.path_info raises on bytes that are not UTF-8 (answered 400 later)
        path = request.environ.get("PATH_INFO", "")
        if path.startswith(API_PREFIX) and not path.startswith(AGENT_PREFIX):
            token = request.headers.get(request.registry.settings["eportal.api_key_header"])
            if token:
                from .services.tokens import verify_token
                user = verify_token(request.dbsession, token.strip())
                return Identity(user.id, user.username, user.role, "token") if user else None
            creds = basic_credentials(request)
            if creds is not None:
                from .services.login import LoginRefused, authenticate
                try:
                    user = authenticate(request, *creds)
                except LoginRefused:
                    from .db import KEEP_WRITES_ON_FORBIDDEN
                    request.environ[KEEP_WRITES_ON_FORBIDDEN] = True  # the failure row must outlive the 401
                    return None
                return Identity(user.id, user.username, user.role, "basic")
        return session_identity(request)

    def authenticated_userid(self, request):
        identity = self.identity(request)
        return identity.username if identity else None

    def permits(self, request, context, permission):
        if permission == NO_PERMISSION_REQUIRED:
            return Allowed("public")
        identity = self.identity(request)
        if identity is None:
            return Denied("not logged in")
        if Permission(permission) in ROLE_PERMISSIONS.get(identity.role, ()):
            return Allowed(f"role {identity.role}")
        return Denied(f"role {identity.role} may not {permission}")

    def remember(self, request, userid, **kw):
        from .session import log_in
        log_in(request, userid)
        return []

    def forget(self, request, **kw):
        request.session.invalidate()
        return []


def session_identity(request) -> Identity | None:
    """The user logged in through this request's console session, if any and still valid."""
    if not request.cookies.get(request.registry.settings["eportal.session.cookie_name"]):
        return None  # do not create a session just to find nobody in it
    user_id = request.session.get("user_id")
    if user_id is None:
        return None
    from .models import User
    user = request.dbsession.get(User, user_id)
    if user is None:
        request.session.invalidate()
        return None
    return Identity(user.id, user.username, user.role, "session")


def basic_credentials(request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, payload = header.partition(" ")
    if scheme.lower() != "basic" or not payload:
        return None
    try:
        decoded = base64.b64decode(payload.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    login, sep, password = decoded.partition(":")
    return (login, password) if sep else None


def includeme(config):
    config.set_security_policy(SecurityPolicy())
    config.set_default_permission(Permission.VIEW)
    # CSRF on every unsafe request by default; agent and token endpoints opt out explicitly
    config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
    config.set_default_csrf_options(require_csrf=True)
