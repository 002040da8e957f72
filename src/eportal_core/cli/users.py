"""User commands: ``eportal user ...`` and the ``kc.eportal -l/-a/-d/-c/-r`` flags share these."""
from __future__ import annotations

import click

from ..services import ServiceError
from ..services import users as users_service


def min_length(env) -> int:
    return env.settings["eportal.password_min_length"]


def print_users(env) -> None:
    with env.dbsession() as db:
        users = users_service.list_users(db)
        click.echo("Num | Username")
        click.echo("--- + " + "-" * 32)
        for user in users:
            click.echo(f"{user.id:>2} | {user.username}")


def ask_password(username: str) -> str:
    return click.prompt(f"Password for '{username}'", hide_input=True, confirmation_prompt=True)


def add(env, username: str, password: str | None, readonly: bool = False) -> None:
    with env.dbsession() as db:
        users_service.validate_username(username)
        if users_service.get_user(db, username) is not None:
            raise ServiceError(f"user '{username}' already exists")
    password = password if password is not None else ask_password(username)
    with env.dbsession() as db:
        users_service.add_user(db, username, password, readonly=readonly, min_length=min_length(env))
    click.echo(f"User '{username}' added" + (" (readonly)" if readonly else ""))


def change_password(env, username: str, password: str | None) -> None:
    with env.dbsession() as db:
        users_service.require_user(db, username)
    password = password if password is not None else ask_password(username)
    with env.dbsession() as db:
        users_service.change_password(db, username, password, min_length=min_length(env))
    click.echo(f"Password for user '{username}' changed")


def delete(env, username: str) -> None:
    with env.dbsession() as db:
        users_service.delete_user(db, username)
    click.echo(f"User '{username}' deleted")


def set_readonly(env, username: str, readonly: bool = True) -> None:
    with env.dbsession() as db:
        users_service.set_readonly(db, username, readonly)
    click.echo(f"User '{username}' is now " + ("readonly" if readonly else "admin"))


@click.group("user")
def user_group():
    """Manage console users."""


@user_group.command("list")
@click.pass_obj
def user_list(env):
    """List users."""
    print_users(env)


@user_group.command("add")
@click.argument("username")
@click.option("-p", "--password", help="The password (asked for without echo when omitted).")
@click.option("-r", "--readonly", is_flag=True, help="Create a read-only user.")
@click.pass_obj
def user_add(env, username, password, readonly):
    """Add a user."""
    add(env, username, password, readonly)


@user_group.command("passwd")
@click.argument("username")
@click.option("-p", "--password", help="The new password (asked for without echo when omitted).")
@click.pass_obj
def user_passwd(env, username, password):
    """Change a user's password."""
    change_password(env, username, password)


@user_group.command("delete")
@click.argument("username")
@click.pass_obj
def user_delete(env, username):
    """Delete a user."""
    delete(env, username)


@user_group.command("readonly")
@click.argument("username")
@click.option("--off", is_flag=True, help="Make the user an admin again.")
@click.pass_obj
def user_readonly(env, username, off):
    """Make a user read-only (or, with --off, admin)."""
    set_readonly(env, username, not off)
