"""The core's machinery a plugin's *tests* drive directly, beyond ``eportal_core.api``: assemble the
app, load settings and plugins, build the two command-line groups, run the site scheduler, open a
database, mint an API token. Plugin production code never needs these (and may not import them:
tests/unit/test_public_surface.py); tests import them from here so that the core can move them."""
from __future__ import annotations

from .. import make_app
from ..cli import build as build_eportal_cli
from ..cli.kc import build as build_kc_cli
from ..db import get_session_factory, make_engine
from ..plugins import PluginInfo, describe_plugins, make_plugin_manager
from ..scheduler import JobStatus, SiteScheduler
from ..services.tokens import create_token
from ..settings import load_settings

__all__ = [
    "make_app", "load_settings", "make_plugin_manager", "describe_plugins", "PluginInfo",
    "build_eportal_cli", "build_kc_cli", "SiteScheduler", "JobStatus", "make_engine", "get_session_factory",
    "create_token",
]
