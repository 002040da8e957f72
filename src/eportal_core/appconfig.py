"""Turn raw ini settings into validated ones and a plugin manager (shared by the app and the CLI)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .plugins import make_plugin_manager
from .settings import CORE_SETTINGS, SettingsError, as_list, resolve_paths, validate_settings


def load_settings(raw: dict[str, Any], ini_dir: str | Path | None = None, *, extra_plugins: dict | None = None):
    """Return ``(settings, pm)``: plugins loaded (minus the disabled ones), every setting validated."""
    try:
        disabled = as_list(raw.get("eportal.plugins.disabled", ""))
    except ValueError:
        disabled = []
    pm = make_plugin_manager(disabled, extra=extra_plugins)
    specs = list(CORE_SETTINGS)
    owned = ["eportal."]
    for contributed in pm.hook.eportal_settings():
        for spec in contributed or []:
            prefix = spec.key.split(".")[0] + "."
            if prefix not in owned:
                owned.append(prefix)
            specs.append(spec)
    keys = [s.key for s in specs]
    if len(keys) != len(set(keys)):
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        raise SettingsError(f"settings declared twice by plugins: {', '.join(dupes)}")
    settings = validate_settings(raw, specs, tuple(owned))
    settings = resolve_paths(settings, Path(ini_dir) if ini_dir else None)
    settings["eportal.plugins.disabled"] = disabled
    return settings, pm
