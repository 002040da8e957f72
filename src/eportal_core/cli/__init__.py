"""``eportal``: serve, migrate, plugins, users, and what plugins add."""
from __future__ import annotations

import sys

import click

from ..plugins import describe_plugins
from ..services import ServiceError
from ..settings import SettingsError
from .env import CliEnv, fail, plugin_commands, preload_env
from .keys import key_command
from .users import user_group

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def build(env: CliEnv) -> click.Group:
    @click.group(context_settings=CONTEXT)
    @click.option("--ini", metavar="PATH", help="The ini file (default: $EPORTAL_INI, the checkout's development.ini, /etc/eportal/eportal.ini).")
    @click.pass_context
    def eportal(ctx, ini):
        """eportal: serve live kernel patches to your fleet."""
        ctx.obj = env

    @eportal.command()
    @click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
    @click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
    @click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256), help="Worker threads.")
    @click.pass_obj
    def serve(env, host, port, threads):
        """Serve the console, API and agent endpoints with waitress."""
        from .serve import serve as run
        run(env, host, port, threads)

    @eportal.command()
    @click.pass_obj
    def migrate(env):
        """Upgrade the database schema to this version."""
        from .. import migrate as m
        before = m.current_revision(env.engine)
        m.upgrade(env.engine)
        after = m.current_revision(env.engine)
        click.echo(f"database at revision {after}" + ("" if before == after else f" (was {before or 'empty'})"))

    @eportal.command()
    @click.pass_obj
    def init(env):
        """Migrate, and on first start create 'admin' with a random password (printed once)."""
        from .. import migrate as m
        from ..services.bootstrap import PASSWORD_FILE, ensure_first_admin
        m.upgrade(env.engine)
        with env.dbsession() as db:
            password = ensure_first_admin(db, env.settings["eportal.data_dir"])
        if password:
            click.echo(f"admin password: {password}")
            click.echo(f"(also stored in {env.settings['eportal.data_dir']}/{PASSWORD_FILE}, readable by this user only)")
        else:
            click.echo("database ready; users exist already")

    @eportal.command()
    @click.pass_obj
    def plugins(env):
        """List the plugins that are loaded, with versions."""
        rows = describe_plugins(env.pm, env.settings["eportal.plugins.disabled"])
        width = max([len(r.name) for r in rows] + [6])
        dwidth = max([len(r.distribution) for r in rows] + [12])
        click.echo(f"{'plugin':<{width}}  {'distribution':<{dwidth}}  {'version':<9}  status")
        for r in rows:
            click.echo(f"{r.name:<{width}}  {r.distribution:<{dwidth}}  {r.version:<9}  {r.status}")

    @eportal.command()
    @click.pass_obj
    def health(env):
        """Run the health checks (database, plugins) here; exit 1 when one fails."""
        from ..health import offline_registry, run_checks
        report = run_checks(offline_registry(env.settings, env.pm, env.engine), private=True)
        for check in report["checks"]:
            click.echo(f"{'ok  ' if check['ok'] else 'FAIL'}  {check['name']}: {check['detail']}")
        if report["status"] != "ok":
            sys.exit(1)

    eportal.add_command(user_group)
    eportal.add_command(key_command)
    for command in plugin_commands(env):
        eportal.add_command(command)
    return eportal


def run_cli(build_group, argv=None, prog_name=None) -> None:
    """Run a click group, turning domain and settings errors into one line and an exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    env = preload_env(argv)
    group = build_group(env)
    try:
        group.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted", 1)
    except (click.exceptions.NoSuchCommand, click.exceptions.NoSuchOption) as exc:
        unusable = env.settings_error()  # plugins' commands and flags were not loaded: say why
        if unusable is not None:
            fail(str(unusable), 2)
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except SettingsError as exc:
        fail(str(exc), 2)
    except ServiceError as exc:
        fail(str(exc), 1)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as exc:  # last resort: one line, never a traceback on the terminal
        from sqlalchemy.exc import OperationalError, ProgrammingError
        if isinstance(exc, (OperationalError, ProgrammingError)):
            fail(f"database error ({type(exc.orig).__name__}): is the database reachable and migrated? run 'eportal migrate'", 3)
        import logging
        logging.getLogger("eportal_core.cli").debug("unexpected error", exc_info=True)
        fail(f"unexpected {type(exc).__name__}: {exc}", 1)


def main(argv=None) -> None:
    run_cli(build, argv, prog_name="eportal")
