"""The plugin's part of the app: the console pages (Settings → Feeds) and the REST API with its documentation."""


def includeme(config):
    config.include("eportal_feeds.views")  # console: /admin/feeds/...
    config.include("eportal_feeds.api")    # REST: /admin/api/feeds/, /admin/api/patchsets/ (+ OpenAPI paths)
