"""The whole domain model. Import models from here."""
from sqlalchemy.orm import configure_mappers

from .feed import MAIN_FEED, Feed
from .key import Key
from .meta import Base, utcnow
from .patchset import STATUS_AVAILABLE, STATUS_BLOCKED, FeedPatchset, PatchLevel, Patchset
from .server import Server, ServerTag
from .site import AuditEvent, LoginFailure, SchedulerLease, SiteSetting, WebSession
from .user import ROLE_ADMIN, ROLE_READONLY, ApiToken, User

configure_mappers()

__all__ = [
    "Base", "utcnow", "User", "ApiToken", "ROLE_ADMIN", "ROLE_READONLY", "Feed", "MAIN_FEED", "Key",
    "Server", "ServerTag", "Patchset", "PatchLevel", "FeedPatchset", "STATUS_AVAILABLE", "STATUS_BLOCKED",
    "SiteSetting", "AuditEvent", "WebSession", "LoginFailure", "SchedulerLease",
]
