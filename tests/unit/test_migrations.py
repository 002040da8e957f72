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


def test_0003_gives_existing_tag_rows_their_servers_key_and_back(fresh_engine):
    """0003 adds server_tags.key_id (filled from the server: tag counts within a key or feed read it)
    and the tag + check-in indexes of each database; downgrading to 0002 keeps every tag."""
    migrate.upgrade(fresh_engine, "0002")
    with writer(fresh_engine).begin() as conn:
        feed_id = conn.exec_driver_sql("INSERT INTO feeds (name, auto, deploy_after, channel, created) "
                                       "VALUES ('main', false, 0, '', '2026-01-01') RETURNING id").scalar()
        key_id = conn.exec_driver_sql("INSERT INTO keys (key, note, server_limit, enabled, feed_id, created) "
                                      f"VALUES ('k1', '', 0, true, {feed_id}, '2026-01-01') RETURNING id").scalar()
        for pk, key in ((1, key_id), (2, None)):
            conn.execute(sa.text(
                "INSERT INTO servers (id, server_id, key_id, ip, hostname, registered, euname, release, kernel_id, "
                "patch_type, tags, version, virt, kcare_version, distro, distro_version, machine, processor) VALUES "
                "(:pk, :sid, :key, '', '', '2026-01-01', '', '', '', 'default', 'env:prod;x', '', '', '', '', '', '', '')"),
                {"pk": pk, "sid": f"S{pk:015d}", "key": key})
            conn.execute(sa.text("INSERT INTO server_tags (server_pk, name, value) VALUES (:pk, 'env', 'prod'), "
                                 "(:pk, 'x', '')"), {"pk": pk})

    migrate.upgrade(fresh_engine)

    with fresh_engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT server_pk, name, key_id FROM server_tags ORDER BY server_pk, name").all()
    assert [tuple(r) for r in rows] == [(1, "env", key_id), (1, "x", key_id), (2, "env", None), (2, "x", None)]
    assert schema_differences(fresh_engine) == []
    indexes = {ix["name"]: ix for ix in sa.inspect(fresh_engine).get_indexes("servers")}
    tag_indexes = {ix["name"] for ix in sa.inspect(fresh_engine).get_indexes("server_tags")}
    if fresh_engine.dialect.name == "postgresql":
        assert indexes["ix_servers_key_id_checkin"]["dialect_options"]["postgresql_include"] == ["id"]
        assert "ix_servers_key_id_checkin_tags" not in indexes
        assert tag_indexes == {"ix_server_tags_name_value", "ix_server_tags_name_value_server_pk_key_id"}
    else:
        assert tag_indexes == {"ix_server_tags_name_value_server_pk_key_id"}
        with fresh_engine.connect() as conn:
            sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'ix_servers_key_id_checkin_tags'").scalar()
        assert sql.endswith("(key_id, checkin, tags) WHERE tags IS NOT NULL")

    downgrade(fresh_engine, "0002")
    with fresh_engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT server_pk, name, value FROM server_tags ORDER BY server_pk, name").all()
    assert [tuple(r) for r in rows] == [(1, "env", "prod"), (1, "x", ""), (2, "env", "prod"), (2, "x", "")]
    assert "key_id" not in {c["name"] for c in sa.inspect(fresh_engine).get_columns("server_tags")}
    assert {ix["name"] for ix in sa.inspect(fresh_engine).get_indexes("server_tags")} == {"ix_server_tags_name_value"}
