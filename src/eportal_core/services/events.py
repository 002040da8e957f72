"""Firing the event hooks (server registered, checked in, unregistered; patchset downloaded,
enabled, disabled), so callers do not each spell out the hook call."""
from __future__ import annotations


def notify(pm, event: str, **kwargs) -> None:
    """Call ``eportal_<event>`` on every plugin; skipped cheaply when nobody listens (hot paths)."""
    hook = getattr(pm.hook, f"eportal_{event}")
    if hook.get_hookimpls():
        hook(**kwargs)
