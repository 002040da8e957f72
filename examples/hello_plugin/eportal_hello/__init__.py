"""eportal-hello: an example plugin (entry point ``hello = eportal_hello`` in the group ``eportal``).

It adds a console page (``/admin/hello``), a navigation entry and a ``hello`` command to both
``eportal`` and ``kc.eportal``.
"""
import click

from eportal_core.api import NavItem, hookimpl


@hookimpl
def eportal_includeme(config):
    config.include("eportal_hello.web")  # routes, views and templates resolve in this package


@hookimpl
def eportal_navigation(request):
    return [NavItem("Hello", "hello", order=500)]


@hookimpl
def eportal_cli_commands():
    @click.command("hello")
    def hello():
        """Say hello (from the example plugin)."""
        click.echo("hello from a plugin")
    return [hello]
