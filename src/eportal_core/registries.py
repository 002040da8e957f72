"""Named things plugins contribute through dict-returning hooks: patch source types, monitoring formats.

One collector, so "two plugins offer the same name" is refused the same way everywhere.
"""
from __future__ import annotations

from typing import Any


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
