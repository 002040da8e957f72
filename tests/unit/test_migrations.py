"""The Alembic migrations, on SQLite and on a real PostgreSQL (a fresh database per test)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from eportal_core import migrate, testing
from eportal_core.db import make_engine, writer
from eportal_core.models import MAIN_FEED, Base, Feed


@pytest.fixture
def fresh_engine(request, backend, tmp_path_factory):
    """An engine on a new, empty database of the current backend."""
    eng = make_engine(testing.new_database_url(request, backend, tmp_path_factory))
    yield eng
    eng.dispose()


def schema_differences(engine) -> list:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                     "include_object": migrate.include_object_for(conn.dialect.name)})
        return compare_metadata(ctx, Base.metadata)


def user_tables(engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def feeds(engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(sa.select(Feed.name).order_by(Feed.id)))


def downgrade(engine, revision: str) -> None:
    with writer(engine).begin() as conn:
        command.downgrade(migrate.alembic_config(conn), revision)


def test_upgrade_to_head_creates_exactly_the_models_schema(fresh_engine):
    assert user_tables(fresh_engine) == set()
    assert migrate.current_revision(fresh_engine) is None

    migrate.upgrade(fresh_engine)

    assert user_tables(fresh_engine) == set(Base.metadata.tables)
    assert schema_differences(fresh_engine) == []
    assert migrate.current_revision(fresh_engine) == migrate.head_revision()


def test_main_feed_exists_after_migrate(fresh_engine):
    migrate.upgrade(fresh_engine)
    assert feeds(fresh_engine) == [MAIN_FEED]
    with fresh_engine.connect() as conn:
        row = conn.execute(sa.select(Feed.auto, Feed.deploy_after, Feed.channel)
                           .where(Feed.name == MAIN_FEED)).one()
    assert (bool(row.auto), row.deploy_after, row.channel) == (False, 0, "")


def test_upgrade_twice_is_a_no_op(fresh_engine):
    migrate.upgrade(fresh_engine)
    with writer(fresh_engine).begin() as conn:
        conn.execute(Feed.__table__.insert().values(name="testing", auto=True, deploy_after=12, channel=""))

    migrate.upgrade(fresh_engine)

    # no second main feed, nothing lost, still at head, schema unchanged
    assert feeds(fresh_engine) == [MAIN_FEED, "testing"]
    assert migrate.current_revision(fresh_engine) == migrate.head_revision()
    assert schema_differences(fresh_engine) == []


def test_downgrade_to_base_and_up_again(fresh_engine):
    migrate.upgrade(fresh_engine)

    downgrade(fresh_engine, "base")
    assert user_tables(fresh_engine) == set()
    assert migrate.current_revision(fresh_engine) is None

    migrate.upgrade(fresh_engine)
    assert user_tables(fresh_engine) == set(Base.metadata.tables)
    assert schema_differences(fresh_engine) == []
    assert feeds(fresh_engine) == [MAIN_FEED]


def test_schema_comparison_would_notice_a_drift(fresh_engine):
    """The "no differences" assertions above are not vacuous: a missing index is reported."""
    migrate.upgrade(fresh_engine)
    with writer(fresh_engine).begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_servers_ip")
    diffs = schema_differences(fresh_engine)
    assert [(d[0], d[1].name) for d in diffs] == [("add_index", "ix_servers_ip")]


def test_the_session_engine_fixture_is_at_head(engine):
    """The harness' shared database went through the same migrations."""
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert schema_differences(engine) == []
