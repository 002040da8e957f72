"""Database migrations (Alembic) and the rows every site needs (the ``main`` feed)."""
from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select

from .db import writer
from .models import MAIN_FEED, Feed


def alembic_config(connection=None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "eportal_core:alembic")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def include_object_for(dialect_name: str):
    """Alembic ``include_object`` for comparing the models with a database of ``dialect_name``:
    leaves out model indexes that exist on another database only (``Index(...).ddl_if(dialect=...)``,
    e.g. PostgreSQL's ``varchar_pattern_ops`` index), which Alembic's comparison does not know about."""
    def include_object(obj, name, type_, reflected, compare_to):
        cond = getattr(obj, "_ddl_if", None) if type_ == "index" and not reflected else None
        return cond is None or cond.dialect is None or cond.dialect == dialect_name
    return include_object


def upgrade(engine, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` and make sure ``main`` exists; safe to run again."""
    with writer(engine).begin() as conn:
        command.upgrade(alembic_config(conn), revision)
        if revision == "head" and conn.execute(select(Feed.id).where(Feed.name == MAIN_FEED)).first() is None:
            conn.execute(Feed.__table__.insert().values(name=MAIN_FEED, auto=False, deploy_after=0, channel=""))


def current_revision(engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
