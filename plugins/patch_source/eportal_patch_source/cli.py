"""Patch source commands, in both ``kc.eportal`` and ``eportal``, and two ``kc.eportal`` flags.

    kc.eportal patch-source [--show]                          the access info (never the password), last poll
    kc.eportal patch-source --url U --user X --password P     set an HTTP(S) source (--password - reads stdin)
    kc.eportal patch-source --type directory --path DIR       set a folder of archives
    kc.eportal patch-source --check                           poll now (downloads, never deploys)
    kc.eportal --get-latest                                   download what is new, deploy the newest to main
    kc.eportal --unroll NAME [--feed F]                       roll back NAME and all after it on F (main)
    kc.eportal kcare deploy ARCHIVE [--feed F] [--disabled]   import an archive, deploy it to F (main)
    kc.eportal kcare unroll NAME [--delete]                   roll back NAME (and after) on every feed
    kc.eportal kcare list [--feed F]                          patchsets and their status on F

Downloads show a progress line on stderr when it is a terminal. Errors: one line, exit status 1.
"""
from __future__ import annotations

import sys

import click

from eportal_core.api import MAIN_FEED, LegacyFlag, ServiceError, deploy

from . import access as access_store
from . import service
from .presenters import size_text
from .state import load_state


class TerminalProgress:
    """``progress(name, done, total)`` drawing one line on stderr, only when stderr is a terminal."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.current = None

    def __call__(self, name: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        if total:
            filled = 30 * done // total
            line = f"{name}  [{'#' * filled}{'.' * (30 - filled)}] {size_text(done)} of {size_text(total)} {100 * done // total:3d}%"
        else:
            line = f"{name}  {size_text(done)}"
        self.stream.write("\r" + line.ljust(78))
        if total and done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _context(env, actor: str = "cli") -> service.Context:
    return service.Context(sessions=env.dbsession, settings=env.settings, pm=env.pm, actor=actor,
                           progress=TerminalProgress())


def _fail_on(result: service.PollResult) -> None:
    for name, error in result.failures.items():
        click.echo(f"error: {name}: {error}", err=True)
    for problem in result.problems:
        click.echo(f"warning: skipped in the index: {problem}", err=True)
    if result.error:
        raise ServiceError(result.error)
    if result.failures:
        sys.exit(1)


# --- patch-source -------------------------------------------------------------------------------

def show(env) -> None:
    with env.dbsession() as db:
        info = access_store.load(db)
        state = load_state(db)
    if info is None:
        click.echo("no patch source configured (kc.eportal patch-source --url URL --user LOGIN --password PASSWORD)")
        return
    click.echo(f"type:      {info.type}")
    if info.type == "directory":
        click.echo(f"path:      {info.path}")
    else:
        click.echo(f"url:       {info.url}")
        click.echo(f"login:     {info.login or '(none)'}")
        click.echo(f"password:  {'(set)' if info.password else '(not set)'}")
    if state.started:
        outcome = "ok" if state.ok else ("failed: " + (state.error or f"{len(state.failures)} patchset(s) failed"))
        click.echo(f"last poll: {state.finished or state.started} UTC ({state.trigger}), {outcome}")
    else:
        click.echo("last poll: never")


@click.command("patch-source")
@click.option("--type", "type_", metavar="TYPE", help="http (the default) or directory (or a type a plugin adds)")
@click.option("--url", metavar="URL", help="the HTTP(S) source: the folder that holds patchsets.json")
@click.option("--path", metavar="DIR", help="a folder of archives (implies --type directory)")
@click.option("--user", "--login", "login", metavar="LOGIN", help="login at the source")
@click.option("--password", metavar="PASSWORD", help="password at the source; '-' reads it from stdin; "
              "left out: the stored one is kept")
@click.option("--show", "show_", is_flag=True, help="print the access info (never the password) and the last poll")
@click.option("--check", is_flag=True, help="poll the source now: record and download new patchsets (no deploy)")
@click.pass_obj
def patch_source_command(env, type_, url, path, login, password, show_, check):
    """Show or set the patch source's access info; --check polls it now."""
    setting = any(v is not None for v in (type_, url, path, login, password))
    if setting and show_:
        raise click.UsageError("--show only prints; set the access info without it")
    if setting:
        if password == "-":
            password = sys.stdin.readline().rstrip("\r\n")
        with env.dbsession() as db:
            old = access_store.load(db) or access_store.AccessInfo()
            kind = type_ or ("directory" if path is not None and url is None else None) or \
                ("http" if url is not None else old.type)
            new = access_store.AccessInfo(type=kind, url=url if url is not None else old.url,
                                          path=path if path is not None else old.path,
                                          login=login if login is not None else old.login, password=password or "")
            saved = access_store.save(db, new, pm=env.pm, settings=env.settings, actor="cli")
            click.echo(f"patch source set: {saved.type} {saved.location}"
                       + (f" (login {saved.login}, password {'set' if saved.password else 'not set'})"
                          if saved.type == "http" else ""))
    if check:
        result = service.poll(_context(env), trigger="cli", retry_refused=True)
        click.echo(result.summary())
        _fail_on(result)
    if show_ or not (setting or check):
        show(env)


# --- kcare ----------------------------------------------------------------------------------------

@click.group("kcare")
def kcare_group():
    """Patchsets: import archive files (air-gapped sites), roll back, list."""


@kcare_group.command("deploy")
@click.argument("archive", type=click.Path(dir_okay=False))
@click.option("--feed", default=MAIN_FEED, show_default=True, metavar="FEED", help="the feed to deploy it to")
@click.option("--disabled", is_flag=True, help="import only; deploy nothing")
@click.pass_obj
def kcare_deploy(env, archive, feed, disabled):
    """Import ARCHIVE (<NAME>.tar.bz2 or .tar.gz) and deploy it, and all before it, to a feed."""
    name, enabled = service.import_file(_context(env), archive, None if disabled else feed)
    click.echo(f"imported {name}")
    if not disabled:
        click.echo(f"enabled on {feed}: {', '.join(enabled)}" if enabled else f"{name} was enabled on {feed} already")


@kcare_group.command("unroll")
@click.argument("name")
@click.option("--delete", "remove", is_flag=True, help="also delete the patchset's files and rows")
@click.pass_obj
def kcare_unroll(env, name, remove):
    """Roll NAME, and every patchset after it, back on every feed."""
    changed = service.unroll_everywhere(_context(env), name, remove=remove)
    for feed, names in changed.items():
        click.echo(f"rolled back on {feed}: {', '.join(names)}")
    if not changed:
        click.echo(f"{name} was not enabled on any feed")
    if remove:
        click.echo(f"deleted {name} (files and rows); polls will not fetch it again")


@kcare_group.command("list")
@click.option("--feed", default=MAIN_FEED, show_default=True, metavar="FEED")
@click.pass_obj
def kcare_list(env, feed):
    """Patchsets, oldest first, with their status on FEED."""
    with env.dbsession() as db:
        rows = [(p.name, p.released, state) for p, state in deploy.status(db, service.feed_by_name(db, feed))]
    click.echo(f"{'Patchset':<16}  {'Released':<16}  Status on {feed}")
    for name, released, state in rows:
        click.echo(f"{name:<16}  {released:%Y-%m-%d %H:%M}  {state}")


def commands() -> list[click.Command]:
    return [patch_source_command, kcare_group]


# --- kc.eportal flags -------------------------------------------------------------------------------

def get_latest(env, _value) -> None:
    result = service.get_latest(_context(env))
    for name in result.poll.downloaded:
        click.echo(f"downloaded {name}")
    for product, (newest, enabled) in result.deployed.items():
        if enabled:
            click.echo(f"enabled on {MAIN_FEED}: {', '.join(enabled)}")
        else:
            click.echo(f"{MAIN_FEED} is up to date ({product}: {newest} is the newest)")
    for gap, waiting in result.held.values():
        click.echo(f"not enabled yet: {', '.join(waiting)} (they come after {gap}, which is not downloaded)")
    if not result.deployed and not result.held:
        click.echo("no patchsets downloaded: nothing to deploy")
    _fail_on(result.poll)


def unroll(env, name) -> None:
    feed = click.get_current_context().params.get("feed") or MAIN_FEED
    disabled = service.rollback(_context(env), feed, name)
    if disabled:
        click.echo(f"rolled back on {feed}: {', '.join(disabled)}")
    else:
        click.echo(f"{name} was not enabled on {feed}: nothing to roll back")


def legacy_flags() -> list[LegacyFlag]:
    return [
        LegacyFlag(click.Option(["--get-latest"], is_flag=True,
                                help="download new patchsets and deploy the newest to main"), get_latest),
        LegacyFlag(click.Option(["--unroll"], metavar="NAME", help="roll back patchset NAME and all after it "
                                "(on main, or on --feed)"), unroll),
        LegacyFlag(click.Option(["--feed"], metavar="FEED", help="with --unroll: the feed (default main)"),
                   lambda env, value: None, goes_with="unroll"),
    ]
