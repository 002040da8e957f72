"""Feed commands: ``kc.eportal feed`` / ``eportal feed`` and the ``kc.eportal --auto-update`` flag.

    kc.eportal feed                                       list feeds (Name, Auto, Deploy after, Keys)
    kc.eportal feed NAME                                  that feed only
    kc.eportal feed -a NAME [--auto|--no-auto] [--deploy-after H]   create a feed
    kc.eportal feed -c NAME [--auto|--no-auto] [--deploy-after H]   change the given fields
    kc.eportal feed -d NAME                               delete a feed; its keys move to main
    kc.eportal --auto-update                              enable what is due on auto feeds now

Every refusal is one line on stderr (``error: ...``) and a non-zero exit: 1 for what the feed
rules refuse, 2 for a command line that does not make sense.
"""
from __future__ import annotations

import click

from eportal_core.api import MAIN_FEED, LegacyFlag
from eportal_core.api import feeds as feeds_service

from .service import run_auto_update


class CommandLineError(click.ClickException):
    """A command line that does not make sense: one line, exit 2 (click's usage text is several lines)."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _delay(hours: int) -> str:
    return f"{hours}h"


def print_feeds(env, only: str | None = None) -> None:
    with env.dbsession() as db:
        rows = feeds_service.list_feeds(db)
        if only is not None:
            feeds_service.feed_by_name(db, only)
            rows = [r for r in rows if r.feed.name == only]
        table = [("Name", "Auto", "Deploy after", "Keys")]
        table += [(r.feed.name, "yes" if r.feed.auto else "no", _delay(r.feed.deploy_after), str(r.keys)) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for i, row in enumerate(table):
        click.echo("  ".join([row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].rjust(widths[2]),
                              row[3].rjust(widths[3])]).rstrip())
        if i == 0:
            click.echo("  ".join("-" * w for w in widths))


def _describe(feed) -> str:
    return f"auto={'yes' if feed.auto else 'no'} deploy_after={_delay(feed.deploy_after)}"


@click.command("feed")
@click.option("-a", "--add", "add_", is_flag=True, help="create the feed NAME")
@click.option("-c", "--change", "change_", is_flag=True, help="change the given fields of NAME")
@click.option("-d", "--delete", "delete_", is_flag=True, help="delete NAME; its keys move to main")
@click.option("--auto/--no-auto", default=None, help="auto update: enable new patchsets by itself")
@click.option("--deploy-after", metavar="H", help="hours after a patchset arrives before an auto feed enables it (0-8760)")
@click.argument("name", required=False)
@click.pass_obj
def feed_command(env, add_, change_, delete_, auto, deploy_after, name):
    """List feeds; with -a, -c or -d create, change or delete one."""
    actions = [flag for flag, given in (("-a", add_), ("-c", change_), ("-d", delete_)) if given]
    fields_given = auto is not None or deploy_after is not None
    if len(actions) > 1:
        raise CommandLineError(f"use one action at a time (got {', '.join(actions)})")
    if not actions:
        if fields_given:
            raise CommandLineError("--auto, --no-auto and --deploy-after go with -a or -c")
        print_feeds(env, name)
        return
    if name is None:
        raise CommandLineError(f"{actions[0]} needs the feed NAME")
    if add_:
        with env.dbsession() as db:
            feed = feeds_service.create_feed(db, name, auto=bool(auto), deploy_after=deploy_after or 0)
            summary = _describe(feed)
        click.echo(f"Feed '{name}' created ({summary})")
    elif change_:
        if not fields_given:
            raise CommandLineError("-c changes what you give: --auto, --no-auto or --deploy-after")
        with env.dbsession() as db:
            feed = feeds_service.update_feed(db, name, auto=auto, deploy_after=deploy_after)
            summary = _describe(feed)
        click.echo(f"Feed '{name}' changed ({summary})")
    else:
        if fields_given:
            raise CommandLineError("-d takes only the feed NAME")
        with env.dbsession() as db:
            moved = feeds_service.delete_feed(db, name)
        click.echo(f"Feed '{name}' deleted; {_plural(moved, 'key')} moved to {MAIN_FEED}")


def run_auto_update_now(env, value) -> None:
    """``kc.eportal --auto-update``: what the scheduled job does, now; prints what it enabled per feed."""
    with env.dbsession() as db:
        results = run_auto_update(db, pm=env.pm)
        lines = [f"{r.feed}: enabled {', '.join(p.name for p in r.enabled)}" if r.enabled
                 else f"{r.feed}: nothing due (deploy after {_delay(r.deploy_after)})" for r in results]
    if not lines:
        lines = ["no feed has auto update on"]
    for line in lines:
        click.echo(line)


def auto_update_flag() -> LegacyFlag:
    option = click.Option(["--auto-update"], is_flag=True, default=False,
                          help="enable the patchsets that are due on auto-update feeds now")
    return LegacyFlag(option, run_auto_update_now)
