"""tag counts within a key or feed: server_tags.key_id; tag + check-in age indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 19:00:00.000000

Measured with bench/pages_bench.py at 1M servers (a tag on 350k of them, a feed of 850k):

- ``server_tags.key_id`` repeats the server's key (a server's key is set when it registers and only
  ever becomes NULL, with the key: both columns have ``ON DELETE SET NULL``), and
  ``ix_server_tags_name_value_server_pk_key_id (name, value, server_pk, key_id)``: a tag's servers
  within a key or a feed are counted from one index range, and PostgreSQL reads a tag's servers
  in server order from it (see the next point). It replaces ``ix_server_tags_name_value`` on
  SQLite only: PostgreSQL deduplicates that one (~10 MB for 1.6M rows against ~120 MB), so a tag
  alone is still counted from it there. Before, a tag within a key or feed joined a third of the
  fleet with the key's or feed's servers (PostgreSQL: a hash join over a sequential scan of
  ``servers``, 0.2-0.3 s; SQLite: a probe per server, 0.3-0.9 s). Existing rows get the key of
  their server.
- PostgreSQL: ``ix_servers_key_id_checkin`` gains ``INCLUDE (id)``, so the servers of a key or feed
  within a check-in age are read from the index alone, sorted by id and merged with a tag's rows
  (services.servers.count_servers; a bitmap heap scan of ``servers`` and a hash of every tag row
  before: 0.2 s -> 80 ms).
- SQLite: ``ix_servers_key_id_checkin_tags (key_id, checkin, tags) WHERE tags IS NOT NULL``: SQLite
  has no hash join, so a count by key or feed, check-in age and tag matches the tag against the
  tag text of this index instead (1.2 s -> ~20 ms). Not on PostgreSQL: a tag text of 1024
  characters can exceed the size of a B-tree entry there.
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    postgresql = op.get_bind().dialect.name == 'postgresql'
    # SQLite: one table rebuild for the new column, its foreign key and the index swap
    with op.batch_alter_table('server_tags', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_server_tags_key_id_keys'), 'keys', ['key_id'], ['id'],
                                    ondelete='SET NULL')
        if not postgresql:  # covered by the new index; PostgreSQL keeps it (deduplicated: small, quick)
            batch_op.drop_index('ix_server_tags_name_value')
    if postgresql:
        op.execute('UPDATE server_tags SET key_id = servers.key_id FROM servers '
                   'WHERE servers.id = server_tags.server_pk AND servers.key_id IS NOT NULL')
    else:
        op.execute('UPDATE server_tags SET key_id = (SELECT servers.key_id FROM servers '
                   'WHERE servers.id = server_tags.server_pk)')
    op.create_index('ix_server_tags_name_value_server_pk_key_id', 'server_tags', ['name', 'value', 'server_pk', 'key_id'],
                    unique=False)
    if postgresql:
        op.drop_index('ix_servers_key_id_checkin', table_name='servers')
        op.create_index('ix_servers_key_id_checkin', 'servers', ['key_id', 'checkin'], unique=False,
                        postgresql_include=['id'])
    else:
        op.create_index('ix_servers_key_id_checkin_tags', 'servers', ['key_id', 'checkin', 'tags'], unique=False,
                        sqlite_where=sa.text('tags IS NOT NULL'))


def downgrade():
    postgresql = op.get_bind().dialect.name == 'postgresql'
    if postgresql:
        op.drop_index('ix_servers_key_id_checkin', table_name='servers')
        op.create_index('ix_servers_key_id_checkin', 'servers', ['key_id', 'checkin'], unique=False)
    else:
        op.drop_index('ix_servers_key_id_checkin_tags', table_name='servers')
    op.drop_index('ix_server_tags_name_value_server_pk_key_id', table_name='server_tags')
    with op.batch_alter_table('server_tags', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_server_tags_key_id_keys'), type_='foreignkey')
        batch_op.drop_column('key_id')
        if not postgresql:
            batch_op.create_index('ix_server_tags_name_value', ['name', 'value'], unique=False)
