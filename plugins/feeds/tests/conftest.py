"""Fixtures of the eportal-feeds tests. The harness itself (``dbsession``, ``testapp``, ``make_user``,
``patch_archives``) comes from ``-p eportal_core.testing``, so every test runs on SQLite and on
PostgreSQL."""
from __future__ import annotations

import shutil

import pytest
import webtest
from sqlalchemy.orm import sessionmaker

from eportal_core import make_app
from eportal_core.services.patchstore import import_archive
from eportal_core.settings import load_settings
from eportal_core.testing import make_test_settings

ENVIRON = {"HTTP_HOST": "eportal.test", "REMOTE_ADDR": "192.0.2.10"}


@pytest.fixture
def make_client(tmp_path, database_url, engine, dbconnection, dbsession):
    """``make_client(**settings)`` -> WebTest client of a freshly assembled app (other settings, e.g.
    ``eportal.plugins.disabled``), its requests joined to the test's transaction."""
    def factory(**overrides):
        settings, pm = load_settings(make_test_settings(tmp_path / "data", database_url, **overrides))
        app = make_app(settings, pm, engine=engine)
        app.registry["dbsession_factory"] = sessionmaker(bind=dbconnection, join_transaction_mode="create_savepoint",
                                                         expire_on_commit=False)
        return webtest.TestApp(app, extra_environ=dict(ENVIRON))
    return factory


@pytest.fixture
def imported(dbsession, patch_archives, tmp_path):
    """The five test archives imported through the real importer (oldest release first); their rows."""
    store = tmp_path / "store"
    rows = [import_archive(dbsession, archive, data_dir=store) for archive in patch_archives]
    dbsession.commit()
    yield rows
    shutil.rmtree(store, ignore_errors=True)
