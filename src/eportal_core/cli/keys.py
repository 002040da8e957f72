"""Key commands: ``kc.eportal key`` / ``eportal key`` and the ``kc.eportal --list-servers`` flag.

    kc.eportal key                         list keys (Key, Feed, Limit, Servers, Description)
    kc.eportal key -a [KEY] [--note T] [--server-limit N] [--feed F]   create (prints the key)
    kc.eportal key -c KEY [--note T] [--server-limit N] [--feed F]     change the given fields
    kc.eportal key -d KEY                  delete the key and its servers
    kc.eportal --list-servers              "Count Key" pairs, as ePortal prints them
"""
from __future__ import annotations

import click

from ..services import ServiceError
from ..services import keys as keys_service


def print_server_counts(env) -> None:
    """``Count Key`` then ``<count> <key>`` per key, in key creation order (ePortal's --list-servers)."""
    with env.dbsession() as db:
        rows = keys_service.list_keys(db)
        click.echo("Count Key")
        for row in rows:
            click.echo(f"{row.servers} {row.key.key}")


def _limit(value: int) -> str:
    return str(value) if value else "unlimited"


def print_keys(env, only: str | None = None) -> None:
    with env.dbsession() as db:
        rows = keys_service.list_keys(db)
        if only is not None:
            rows = [r for r in rows if r.key.key == only]
            if not rows:
                raise ServiceError(f"key '{only[:64]}' does not exist")
        table = [("Key", "Feed", "Limit", "Servers", "Description")]
        table += [(r.key.key, r.key.feed.name, _limit(r.key.server_limit), str(r.servers), r.key.note) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for i, row in enumerate(table):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].rjust(widths[2]), row[3].rjust(widths[3]),
                 row[4].replace("\n", " ")]
        click.echo("  ".join(cells).rstrip())
        if i == 0:
            click.echo("  ".join("-" * w for w in widths) + "  " + "-" * 11)


def add(env, name: str | None, note: str | None, server_limit, feed: str | None) -> None:
    with env.dbsession() as db:
        key = keys_service.create_key(db, name, note=note or "", server_limit=server_limit or 0, feed=feed)
        created = key.key
    click.echo(created)


def change(env, name: str, note: str | None, server_limit, feed: str | None) -> None:
    if note is None and server_limit is None and feed is None:
        raise click.UsageError("-c changes what you give: --note, --server-limit or --feed")
    with env.dbsession() as db:
        key = keys_service.update_key(db, name, note=note, server_limit=server_limit, feed=feed)
        summary = f"feed={key.feed.name} limit={_limit(key.server_limit)}"
    click.echo(f"Key '{name}' changed ({summary})")


def delete(env, name: str) -> None:
    with env.dbsession() as db:
        removed = keys_service.delete_key(db, name, pm=env.pm)
    click.echo(f"Key '{name}' deleted with its {removed} server{'' if removed == 1 else 's'}")


@click.command("key")
@click.option("-a", "--add", "add_", is_flag=True, help="create a key (KEY optional: one is generated)")
@click.option("-c", "--change", "change_", is_flag=True, help="change the given fields of KEY")
@click.option("-d", "--delete", "delete_", is_flag=True, help="delete KEY and every server registered with it")
@click.option("--note", metavar="TEXT", help="the key's description")
@click.option("--server-limit", metavar="N", help="how many servers may register (0 = unlimited)")
@click.option("--feed", metavar="NAME", help="the feed of the key's servers (default: main)")
@click.argument("key", required=False)
@click.pass_obj
def key_command(env, add_, change_, delete_, note, server_limit, feed, key):
    """List registration keys; with -a, -c or -d create, change or delete one."""
    actions = [flag for flag, given in (("-a", add_), ("-c", change_), ("-d", delete_)) if given]
    fields_given = note is not None or server_limit is not None or feed is not None
    if len(actions) > 1:
        raise click.UsageError(f"use one action at a time (got {', '.join(actions)})")
    if not actions:
        if fields_given:
            raise click.UsageError("--note, --server-limit and --feed go with -a or -c")
        print_keys(env, key)
    elif add_:
        add(env, key, note, server_limit, feed)
    elif key is None:
        raise click.UsageError(f"{actions[0]} needs the KEY")
    elif change_:
        change(env, key, note, server_limit, feed)
    else:
        if fields_given:
            raise click.UsageError("-d takes only the KEY")
        delete(env, key)
