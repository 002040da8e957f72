"""Permissions, named once. Every view declares one of these."""
from enum import StrEnum


class Permission(StrEnum):
    #: see any console page and read the REST API (admin and readonly)
    VIEW = "view"
    #: change anything: users, keys, servers, feeds, patchsets, settings (admin only)
    MANAGE = "manage"


ROLE_PERMISSIONS = {
    "admin": frozenset(Permission),
    "readonly": frozenset({Permission.VIEW}),
}
