"""Every asset ships inside the package: sites are offline, so no CDN."""


def includeme(config):
    config.add_static_view("admin/static", "eportal_core:static", cache_max_age=3600)
