"""server list indexes: a key's servers by registration; hostname patterns on PostgreSQL

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 16:00:00.000000

Measured with bench/pages_bench.py at 1M servers:

- ``ix_servers_key_id_registered``: a key's server list in the default order (newest registration
  first) is read straight from this index. Without it SQLite found the key's servers through
  ``ix_servers_key_id_checkin`` and sorted all of them (0.7 s for a key of 275k servers).
- ``ix_servers_hostname_pattern`` (PostgreSQL only): ``hostname LIKE 'web-01%'`` can use a B-tree
  index only when the index compares bytes (``varchar_pattern_ops``) or the database collation is
  ``C``; with any other collation (en_US.UTF-8, C.UTF-8 before PostgreSQL 17) the filter read the
  whole table (0.3 s). ``ix_servers_hostname`` stays: it serves ``ORDER BY hostname`` and ``=``.
"""
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('servers', schema=None) as batch_op:
        batch_op.create_index('ix_servers_key_id_registered', ['key_id', 'registered'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.create_index('ix_servers_hostname_pattern', 'servers', ['hostname'], unique=False,
                        postgresql_ops={'hostname': 'varchar_pattern_ops'})


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_servers_hostname_pattern', table_name='servers')
    with op.batch_alter_table('servers', schema=None) as batch_op:
        batch_op.drop_index('ix_servers_key_id_registered')
