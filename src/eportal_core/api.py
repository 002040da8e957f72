"""The public surface: everything a plugin may import from eportal's core, in one module.

Plugins (their production code) import from here and nowhere else in ``eportal_core``; their
tests may also use the test harness, ``eportal_core.testing`` and its modules. A test
(tests/unit/test_public_surface.py) fails when a plugin under plugins/ or examples/ reaches past
these two. A name here keeps its meaning across minor versions; anything else in the core may move
without notice (as it did when the core was laid out in folders). docs/plugins.md explains each
group and the hooks they serve.

Service modules are exported as modules (``deploy``, ``feeds``...): their public functions are
those without a leading underscore.
"""
from __future__ import annotations

from .agent.lane import add_lane_view
from .cli.env import CliEnv
from .cli.kc import LegacyFlag
from .db import get_tm_session, transaction_session
from .health import Check
from .models import (
    MAIN_FEED,
    STATUS_AVAILABLE,
    STATUS_BLOCKED,
    AuditEvent,
    Feed,
    FeedPatchset,
    Key,
    PatchLevel,
    Patchset,
    Server,
    SiteSetting,
    User,
    utcnow,
)
from .permissions import Permission
from .plugins import RegistryError, hookimpl, monitoring_formats
from .scheduler import Job
from .services import ServiceError, audit, deploy, diskspace, feeds, keys, patchstore, users
from .services.archives import MAX_CHANGELOG_BYTES, MAX_MANIFEST_BYTES, new_partial_dir, remove_tree
from .services.deploy import STATUSES
from .services.feeds import MAX_DEPLOY_AFTER, feed_by_name
from .services.manifests import (
    ARCHIVE_SUFFIXES,
    CHANGELOG,
    MANIFEST,
    PRODUCT_RE,
    SHA256_RE,
    first_line,
    parse_manifest,
    valid_patchset_name,
)
from .services.patchstore import import_archive, patches_dir, patchset_dir
from .services.users import sync_external_user
from .settings import Setting, SettingsError, as_bool, as_list, as_str, int_between, one_of
from .sources import (
    AccessInfo,
    ArchiveRefused,
    Fetched,
    Index,
    IndexEntry,
    Progress,
    Source,
    SourceError,
    make_source,
    parse_entry,
    parse_time,
    source_types,
)
from .web.clientip import client_ip
from .web.openapi import (
    READ_ERRORS,
    RESULT_OK,
    STR,
    WRITE_ERRORS,
    add_api_paths,
    body_params,
    error_responses,
    json_content,
    operation,
    query_param,
    schema_ref,
)
from .web.rest import (
    ApiError,
    actor,
    add_api_routes,
    api_guard,
    api_params,
    bool_param,
    error_response,
    json_response,
    text_param,
)
from .web.ui import SETTINGS, NavItem, plural, sentence

__all__ = [
    # plugin machinery
    "hookimpl", "RegistryError", "monitoring_formats",
    "Setting", "SettingsError", "as_bool", "as_list", "as_str", "int_between", "one_of",
    "Permission",
    # jobs, commands, health
    "Job", "CliEnv", "LegacyFlag", "Check",
    # the database and the domain
    "get_tm_session", "transaction_session",
    "AuditEvent", "Feed", "FeedPatchset", "Key", "PatchLevel", "Patchset", "Server", "SiteSetting", "User",
    "MAIN_FEED", "STATUS_AVAILABLE", "STATUS_BLOCKED", "utcnow",
    "ServiceError", "audit", "deploy", "diskspace", "feeds", "keys", "patchstore", "users",
    "STATUSES", "MAX_DEPLOY_AFTER", "feed_by_name", "sync_external_user",
    "import_archive", "patches_dir", "patchset_dir",
    "MAX_CHANGELOG_BYTES", "MAX_MANIFEST_BYTES", "new_partial_dir", "remove_tree",
    "ARCHIVE_SUFFIXES", "CHANGELOG", "MANIFEST", "PRODUCT_RE", "SHA256_RE", "first_line", "parse_manifest",
    "valid_patchset_name",
    # patch sources
    "AccessInfo", "ArchiveRefused", "Fetched", "Index", "IndexEntry", "Progress", "Source", "SourceError",
    "make_source", "parse_entry", "parse_time", "source_types",
    # the web
    "client_ip", "NavItem", "SETTINGS", "plural", "sentence",
    "ApiError", "actor", "add_api_routes", "api_guard", "api_params", "bool_param", "error_response",
    "json_response", "text_param",
    "add_api_paths", "READ_ERRORS", "RESULT_OK", "STR", "WRITE_ERRORS", "body_params", "error_responses",
    "json_content", "operation", "query_param", "schema_ref",
    # the agent path
    "add_lane_view",
]
