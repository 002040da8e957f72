"""The one plugin-manager factory, the ``hookimpl`` marker and the built-in plugin list."""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs

log = logging.getLogger(__name__)

hookimpl = pluggy.HookimplMarker("eportal")

ENTRY_POINT_GROUP = "eportal"

#: built-in behaviour, registered like any plugin so a site can block and replace it
BUILTIN_PLUGINS = {
    "local_auth": "eportal_core.builtin.local_auth",
    "core_jobs": "eportal_core.builtin.core_jobs",
    "core_ui": "eportal_core.builtin.core_ui",
}


@dataclass(frozen=True)
class PluginInfo:
    name: str
    distribution: str
    version: str
    status: str  # "loaded" or "disabled"


def make_plugin_manager(disabled: list[str] | tuple[str, ...] = (), extra: dict | None = None, *,
                        load_entrypoints: bool = True) -> pluggy.PluginManager:
    """Built-ins, then entry points of group ``eportal``, minus ``disabled``; then ``check_pending``.

    ``extra`` maps names to already-imported plugin objects (used by tests and embedders);
    ``load_entrypoints=False`` leaves the installed plugins out (tests of the core's own behaviour).
    """
    pm = pluggy.PluginManager("eportal")
    pm.add_hookspecs(hookspecs)
    for name in disabled:
        pm.set_blocked(name)
    for name, module in BUILTIN_PLUGINS.items():
        if not pm.is_blocked(name):
            pm.register(importlib.import_module(module), name=name)
    for name, plugin in (extra or {}).items():
        if not pm.is_blocked(name):
            pm.register(plugin, name=name)
    if load_entrypoints:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    known = set(BUILTIN_PLUGINS) | set(extra or {}) | {ep.name for ep in _entry_points()}
    for name in disabled:
        if name not in known:
            log.warning("eportal.plugins.disabled names %r, which is not installed", name)
    pm.check_pending()
    return pm


def _entry_points():
    return metadata.entry_points(group=ENTRY_POINT_GROUP)


def describe_plugins(pm: pluggy.PluginManager, disabled: list[str] | tuple[str, ...] = ()) -> list[PluginInfo]:
    """What is loaded (and what the ini switched off), with distributions and versions."""
    core_version = metadata.version("eportal-core")
    dists = {name: ("eportal-core", core_version) for name in BUILTIN_PLUGINS}
    for _plugin, dist in pm.list_plugin_distinfo():  # pluggy gives (plugin, dist) pairs
        for ep in dist.entry_points:
            if ep.group == ENTRY_POINT_GROUP:
                dists[ep.name] = (dist.metadata["Name"], dist.version)
    for ep in _entry_points():
        if ep.name not in dists and ep.dist is not None:
            dists[ep.name] = (ep.dist.metadata["Name"], ep.dist.version)
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        dist, version = dists.get(name, ("(registered in code)", "-"))
        infos.append(PluginInfo(name, dist, version, "loaded"))
    for name in disabled:
        dist, version = dists.get(name, ("(not installed)", "-"))
        infos.append(PluginInfo(name, dist, version, "disabled"))
    return sorted(infos, key=lambda i: (i.status != "loaded", i.name))


# --- named things plugins contribute through dict-returning hooks (patch source types, monitoring
# formats): one collector, so "two plugins offer the same name" is refused the same way everywhere
class RegistryError(ValueError):
    """Two plugins offer the same name, or a name is unknown."""


def collect_named(pm, hook_name: str, what: str) -> dict[str, Any]:
    """Merge the dicts every plugin returns from ``hook_name``; a name offered twice is an error."""
    merged: dict[str, Any] = {}
    owners: dict[str, str] = {}
    hook = getattr(pm.hook, hook_name)
    for impl in hook.get_hookimpls():  # registration order (pluggy calls them reversed), for stable messages
        contributed = impl.function()
        for name, value in (contributed or {}).items():
            if name in merged:
                raise RegistryError(f"{what} {name!r} is offered by both {owners[name]} and {impl.plugin_name}")
            merged[name] = value
            owners[name] = impl.plugin_name
    return merged


def patch_source_types(pm) -> dict[str, Any]:
    """``{type name: factory(settings, access_info)}`` from every plugin."""
    return collect_named(pm, "eportal_patch_source_types", "patch source type")


def monitoring_formats(pm) -> dict[str, Any]:
    """``{format name: render(counts, problems)}`` from every plugin."""
    return collect_named(pm, "eportal_monitoring_formats", "monitoring format")
