"""eportal-feeds: feed management (Settings → Feeds), auto-update of feeds, the feed CLI and REST API."""
from setuptools import setup

setup(
    name="eportal-feeds",
    version="0.1.0",
    description="eportal plugin: feeds (console, auto update, kc.eportal feed, /admin/api/feeds and /admin/api/patchsets)",
    license="GPL-2.0-or-later",
    python_requires=">=3.11",
    packages=["eportal_feeds"],
    package_data={"eportal_feeds": ["templates/*.pt"]},
    zip_safe=False,
    install_requires=["eportal-core", "click>=8.1"],
    entry_points={"eportal": ["feeds = eportal_feeds"]},
)
