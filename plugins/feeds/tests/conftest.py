"""Fixtures of the eportal-feeds tests. The harness itself (``dbsession``, ``testapp``,
``make_app_client`` for an app with other settings, ``make_user`` and the other factories,
``patch_archives``) comes from ``-p eportal_core.testing``, so every test runs on SQLite and on
PostgreSQL."""
from __future__ import annotations

import shutil

import pytest

from eportal_core.api import import_archive


@pytest.fixture
def imported(dbsession, patch_archives, tmp_path):
    """The five test archives imported through the real importer (oldest release first); their rows."""
    store = tmp_path / "store"
    rows = [import_archive(dbsession, archive, data_dir=store) for archive in patch_archives]
    dbsession.commit()
    yield rows
    shutil.rmtree(store, ignore_errors=True)
