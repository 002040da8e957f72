"""eportal: an on-premises console that serves live kernel patches to fleets of Linux servers."""
from pyramid.config import Configurator

from .agent import lane as agent_lane
from .settings import load_settings


def main(global_config, **settings):
    """The WSGI app (PasteDeploy entry point ``egg:eportal-core``)."""
    settings, pm = load_settings(settings, global_config.get("here") if global_config else None)
    return make_app(settings, pm)


def make_app(settings, pm, *, engine=None):
    """Assemble the app from validated settings and a plugin manager (tests call this directly)."""
    with Configurator(settings=settings) as config:
        config.registry.pm = pm
        if engine is not None:
            config.registry["dbengine"] = engine
        config.include("pyramid_chameleon")          # .pt templates
        config.include(".db")                        # request.dbsession, one transaction per request
        config.include(".agent")                     # agent read path, coalesced check-ins
        config.include(".session")                   # server-side console sessions in the database
        config.include(".security")                  # the security policy, default permission, CSRF
        config.include(".web.headers")               # CSP, nosniff, frame-ancestors, Referrer-Policy
        config.include(".web.ui")                    # layout macro, navigation, flash messages
        config.include(".web.static")                # bundled CSS, JS and images
        config.include(".health")                    # GET /admin/health
        config.include(".views.ping")                # GET /admin/ping: liveness, no database
        config.include(".views.auth")                # login, logout
        config.include(".views.home")                # the start page: check-in summary and Key Inventory
        config.include(".views.keys")                # create, edit, remove keys
        config.include(".views.servers")             # the server inventory and one server's page
        config.include(".views.users")               # console user management
        config.include(".views.tokens")              # console: API tokens of each user
        config.include(".views.api")                 # the admin REST API (protocol.md §6), OpenAPI document
        config.include(".agent.views")               # agent protocol: register, unregister, check-in
        config.include(".agent.scripts")             # install-kernelcare and set-patch-server shell scripts
        config.include(".agent.patches")             # agent patch downloads: latest.v2, version, kpatch.info, files
        pm.hook.eportal_includeme(config=config)     # plugins add their routes and views
        config.scan(".views")
    return agent_lane.wrap(config.make_wsgi_app())
