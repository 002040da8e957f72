"""Alembic environment: the engine comes from the validated settings (see eportal_core.migrate)."""
from alembic import context

from eportal_core.models import Base

config = context.config
connectable = config.attributes.get("connection")
target_metadata = Base.metadata


def run_migrations_online():
    if connectable is None:
        raise RuntimeError("run migrations through `eportal migrate`, which passes the connection")
    from eportal_core.migrate import include_object_for
    context.configure(connection=connectable, target_metadata=target_metadata, render_as_batch=True,
                      compare_type=True, include_object=include_object_for(connectable.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
