"""``kc.eportal``: the documented ePortal flags, kept exactly, plus the commands plugins add.

    kc.eportal -l                    list users (``Num | Username`` table)
    kc.eportal -a USER [-p PW] [-r]  add a user (prompts without echo when -p is missing)
    kc.eportal -c USER [-p PW]       change a password
    kc.eportal -d USER               delete a user
    kc.eportal -r USER               make a user read-only
    kc.eportal --list-servers        "Count Key": how many servers each key has
    kc.eportal key [-a|-c|-d] ...    list, create, change or delete keys (see cli/keys.py)
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from . import CONTEXT, run_cli
from . import keys as cli_keys
from . import users as cli_users
from .env import CliEnv, plugin_commands


@dataclass(frozen=True)
class LegacyFlag:
    """A top-level ``kc.eportal`` flag a plugin adds: its option, and what runs when it is given."""

    option: click.Option
    run: Callable[[CliEnv, Any], None]
    #: set on an option that only modifies another flag (``--feed`` of ``--unroll``): the name of that
    #: flag's option; ``run`` is then never called, and the flag it goes with reads it from ctx.params
    goes_with: str | None = None


def legacy_flags(env: CliEnv) -> list[LegacyFlag]:
    try:
        pm = env.pm
    except Exception:
        return []
    flags: list[LegacyFlag] = []
    for contributed in pm.hook.eportal_legacy_flags():
        flags.extend(contributed or [])
    return flags


def build(env: CliEnv) -> click.Group:
    flags = legacy_flags(env)

    @click.group(context_settings=CONTEXT, invoke_without_command=True)
    @click.option("--ini", metavar="PATH", help="The ini file (default: $EPORTAL_INI, then the usual places).")
    @click.option("-l", "--list-users", is_flag=True, help="list all users")
    @click.option("-a", "--add-user", metavar="USER", help="add a user")
    @click.option("-d", "--delete-user", metavar="USER", help="delete a user")
    @click.option("-c", "--change-password", metavar="USER", help="change a user password")
    @click.option("-p", "--password", metavar="PASSWORD", help="provide a password for a user")
    @click.option("-r", "--readonly", metavar="USER", is_flag=False, flag_value="", default=None,
                  help="make USER read-only; with -a, create the user read-only")
    @click.option("--list-servers", is_flag=True, help="print the number of servers of each key")
    @click.pass_context
    def kc(ctx, ini, list_users, add_user, delete_user, change_password, password, readonly, list_servers, **extra):
        """Manage eportal users (and, through plugins, keys, feeds and patches)."""
        ctx.obj = env
        if ctx.invoked_subcommand is not None:
            return
        actions = [name for name, value in (("-l", list_users), ("-a", add_user), ("-d", delete_user),
                                             ("-c", change_password), ("--list-servers", list_servers)) if value]
        given_flags = [f for f in flags if extra.get(f.option.name) not in (None, False, ()) and not f.goes_with]
        for f in flags:
            if f.goes_with and extra.get(f.option.name) not in (None, False, ()) \
                    and extra.get(f.goes_with) in (None, False, ()):
                raise click.UsageError(f"{f.option.opts[0]} goes with --{f.goes_with.replace('_', '-')}")
        if add_user is None and readonly not in (None, ""):
            actions.append("-r")
        if len(actions) + len(given_flags) > 1:
            raise click.UsageError(f"use one action at a time (got {', '.join(actions + [f.option.opts[0] for f in given_flags])})")
        if readonly == "" and not add_user:
            raise click.UsageError("-r/--readonly needs a user name: kc.eportal -r USER (or kc.eportal -a USER -r)")
        if password is not None and not (add_user or change_password):
            raise click.UsageError("-p/--password goes with -a/--add-user or -c/--change-password")
        if add_user and readonly not in (None, ""):
            raise click.UsageError("with -a, give -r without a user name: kc.eportal -a USER -r")
        if list_users:
            cli_users.print_users(env)
        elif add_user:
            cli_users.add(env, add_user, password, readonly=readonly == "")
        elif delete_user:
            cli_users.delete(env, delete_user)
        elif change_password:
            cli_users.change_password(env, change_password, password)
        elif readonly:
            cli_users.set_readonly(env, readonly)
        elif list_servers:
            cli_keys.print_server_counts(env)
        elif given_flags:
            flag = given_flags[0]
            flag.run(env, extra[flag.option.name])
        else:
            click.echo(ctx.get_help())

    for flag in flags:
        kc.params.append(flag.option)
    kc.add_command(cli_users.user_group)
    kc.add_command(cli_keys.key_command)
    for command in plugin_commands(env):
        kc.add_command(command)
    return kc


def main(argv=None) -> None:
    run_cli(build, argv, prog_name="kc.eportal")
