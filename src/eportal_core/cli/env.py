"""What every CLI command needs: the ini file, validated settings, plugins, the database."""
from __future__ import annotations

import sys
from functools import cached_property
from pathlib import Path

import click
from pyramid.paster import get_appsettings, setup_logging

from ..db import get_session_factory, make_engine, transaction_session
from ..settings import SettingsError, ensure_data_dir, find_ini, load_settings


class CliEnv:
    def __init__(self, ini: str | None = None):
        self._ini = ini

    @cached_property
    def ini_path(self) -> Path:
        return find_ini(self._ini)

    @cached_property
    def _loaded(self):
        path = self.ini_path
        try:
            raw = get_appsettings(str(path), name="main")
        except Exception as exc:  # a broken ini: name the file and the problem, no traceback
            raise SettingsError(f"cannot read {path}: {exc}") from None
        return load_settings(dict(raw), path.parent)

    @property
    def settings(self) -> dict:
        return self._loaded[0]

    @property
    def pm(self):
        return self._loaded[1]

    def settings_error(self) -> SettingsError | None:
        """Why the ini cannot be used, or None: without it plugins' commands are missing, and an
        unknown command must then say so rather than look like a typo."""
        try:
            self._loaded  # noqa: B018
        except SettingsError as exc:
            return exc
        return None

    def setup_logging(self) -> None:
        try:
            setup_logging(str(self.ini_path))
        except Exception:
            pass  # an ini without [loggers] logs with Python's defaults

    @cached_property
    def engine(self):
        ensure_data_dir(self.settings)
        return make_engine(self.settings["sqlalchemy.url"])

    def dbsession(self):
        """One transaction: committed when the block ends, aborted if it raises."""
        return transaction_session(get_session_factory(self.engine))


def preload_env(argv: list[str]) -> CliEnv:
    """Find ``--ini`` before click parses, since plugins (and so the commands) depend on it."""
    ini = None
    for i, arg in enumerate(argv):
        if arg == "--ini" and i + 1 < len(argv):
            ini = argv[i + 1]
        elif arg.startswith("--ini="):
            ini = arg.split("=", 1)[1]
    return CliEnv(ini)


def plugin_commands(env: CliEnv) -> list[click.Command]:
    """Commands plugins contribute; none when the ini cannot be read (``--help`` still works)."""
    try:
        pm = env.pm
    except SettingsError:
        return []
    commands: list[click.Command] = []
    for contributed in pm.hook.eportal_cli_commands():
        commands.extend(contributed or [])
    return commands


def fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)
