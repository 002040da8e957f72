"""initial schema: the whole domain

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-26 14:37:22.165494
"""
import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():

    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=255), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_at'), ['at'], unique=False)

    op.create_table('feeds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('auto', sa.Boolean(), nullable=False),
    sa.Column('deploy_after', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=64), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feeds')),
    sa.UniqueConstraint('name', name=op.f('uq_feeds_name'))
    )
    op.create_table('login_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=128), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_failures_at'), ['at'], unique=False)
        batch_op.create_index('ix_login_failures_ip_at', ['ip', 'at'], unique=False)
        batch_op.create_index('ix_login_failures_username_at', ['username', 'at'], unique=False)

    op.create_table('patchsets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('product', sa.String(length=64), nullable=False),
    sa.Column('released', sa.DateTime(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('changelog', sa.Text(), nullable=False),
    sa.Column('downloaded', sa.DateTime(), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patchsets')),
    sa.UniqueConstraint('name', name=op.f('uq_patchsets_name'))
    )
    with op.batch_alter_table('patchsets', schema=None) as batch_op:
        batch_op.create_index('ix_patchsets_released_name', ['released', 'name'], unique=False)

    op.create_table('scheduler_lease',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=255), nullable=False),
    sa.Column('expires', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_scheduler_lease'))
    )
    op.create_table('site_settings',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_site_settings'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=128), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('readonly', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('last_login', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=12), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('expires', sa.DateTime(), nullable=True),
    sa.Column('last_used', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('digest', name=op.f('uq_api_tokens_digest'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('feed_patchsets',
    sa.Column('feed_id', sa.Integer(), nullable=False),
    sa.Column('patchset_id', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('changed', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['feed_id'], ['feeds.id'], name=op.f('fk_feed_patchsets_feed_id_feeds'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['patchset_id'], ['patchsets.id'], name=op.f('fk_feed_patchsets_patchset_id_patchsets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('feed_id', 'patchset_id', name=op.f('pk_feed_patchsets'))
    )
    with op.batch_alter_table('feed_patchsets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feed_patchsets_patchset_id'), ['patchset_id'], unique=False)

    op.create_table('keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('server_limit', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('feed_id', sa.Integer(), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['feed_id'], ['feeds.id'], name=op.f('fk_keys_feed_id_feeds')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_keys')),
    sa.UniqueConstraint('key', name=op.f('uq_keys_key'))
    )
    with op.batch_alter_table('keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_keys_feed_id'), ['feed_id'], unique=False)

    op.create_table('patch_levels',
    sa.Column('patchset_id', sa.Integer(), nullable=False),
    sa.Column('kernel_id', sa.String(length=40), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['patchset_id'], ['patchsets.id'], name=op.f('fk_patch_levels_patchset_id_patchsets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('patchset_id', 'kernel_id', name=op.f('pk_patch_levels'))
    )
    with op.batch_alter_table('patch_levels', schema=None) as batch_op:
        batch_op.create_index('ix_patch_levels_kernel_id_level', ['kernel_id', 'level'], unique=False)

    op.create_table('web_sessions',
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('last_seen', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_web_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('digest', name=op.f('pk_web_sessions'))
    )
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_web_sessions_last_seen'), ['last_seen'], unique=False)
        batch_op.create_index(batch_op.f('ix_web_sessions_user_id'), ['user_id'], unique=False)

    op.create_table('servers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('server_id', sa.String(length=16), nullable=False),
    sa.Column('key_id', sa.Integer(), nullable=True),
    sa.Column('ip', sa.String(length=45), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('registered', sa.DateTime(), nullable=False),
    sa.Column('checkin', sa.DateTime(), nullable=True),
    sa.Column('updated', sa.DateTime(), nullable=True),
    sa.Column('euname', sa.String(length=255), nullable=False),
    sa.Column('release', sa.String(length=255), nullable=False),
    sa.Column('kernel_id', sa.String(length=40), nullable=False),
    sa.Column('patch_level', sa.Integer(), nullable=True),
    sa.Column('patch_type', sa.String(length=16), nullable=False),
    sa.Column('tags', sa.String(length=1024), nullable=True),
    sa.Column('uptime', sa.BigInteger(), nullable=True),
    sa.Column('version', sa.String(length=255), nullable=False),
    sa.Column('virt', sa.String(length=64), nullable=False),
    sa.Column('kcare_version', sa.String(length=64), nullable=False),
    sa.Column('distro', sa.String(length=64), nullable=False),
    sa.Column('distro_version', sa.String(length=64), nullable=False),
    sa.Column('machine', sa.String(length=64), nullable=False),
    sa.Column('processor', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['key_id'], ['keys.id'], name=op.f('fk_servers_key_id_keys'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_servers')),
    sa.UniqueConstraint('server_id', name=op.f('uq_servers_server_id'))
    )
    with op.batch_alter_table('servers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_servers_checkin'), ['checkin'], unique=False)
        batch_op.create_index(batch_op.f('ix_servers_euname'), ['euname'], unique=False)
        batch_op.create_index(batch_op.f('ix_servers_hostname'), ['hostname'], unique=False)
        batch_op.create_index(batch_op.f('ix_servers_ip'), ['ip'], unique=False)
        batch_op.create_index(batch_op.f('ix_servers_kernel_id'), ['kernel_id'], unique=False)
        batch_op.create_index('ix_servers_key_id_checkin', ['key_id', 'checkin'], unique=False)
        batch_op.create_index(batch_op.f('ix_servers_registered'), ['registered'], unique=False)
        batch_op.create_index(batch_op.f('ix_servers_updated'), ['updated'], unique=False)

    op.create_table('server_tags',
    sa.Column('server_pk', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['server_pk'], ['servers.id'], name=op.f('fk_server_tags_server_pk_servers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('server_pk', 'name', 'value', name=op.f('pk_server_tags'))
    )
    with op.batch_alter_table('server_tags', schema=None) as batch_op:
        batch_op.create_index('ix_server_tags_name_value', ['name', 'value'], unique=False)




def downgrade():

    with op.batch_alter_table('server_tags', schema=None) as batch_op:
        batch_op.drop_index('ix_server_tags_name_value')

    op.drop_table('server_tags')
    with op.batch_alter_table('servers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_servers_updated'))
        batch_op.drop_index(batch_op.f('ix_servers_registered'))
        batch_op.drop_index('ix_servers_key_id_checkin')
        batch_op.drop_index(batch_op.f('ix_servers_kernel_id'))
        batch_op.drop_index(batch_op.f('ix_servers_ip'))
        batch_op.drop_index(batch_op.f('ix_servers_hostname'))
        batch_op.drop_index(batch_op.f('ix_servers_euname'))
        batch_op.drop_index(batch_op.f('ix_servers_checkin'))

    op.drop_table('servers')
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_web_sessions_user_id'))
        batch_op.drop_index(batch_op.f('ix_web_sessions_last_seen'))

    op.drop_table('web_sessions')
    with op.batch_alter_table('patch_levels', schema=None) as batch_op:
        batch_op.drop_index('ix_patch_levels_kernel_id_level')

    op.drop_table('patch_levels')
    with op.batch_alter_table('keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_keys_feed_id'))

    op.drop_table('keys')
    with op.batch_alter_table('feed_patchsets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feed_patchsets_patchset_id'))

    op.drop_table('feed_patchsets')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_user_id'))

    op.drop_table('api_tokens')
    op.drop_table('users')
    op.drop_table('site_settings')
    op.drop_table('scheduler_lease')
    with op.batch_alter_table('patchsets', schema=None) as batch_op:
        batch_op.drop_index('ix_patchsets_released_name')

    op.drop_table('patchsets')
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.drop_index('ix_login_failures_username_at')
        batch_op.drop_index('ix_login_failures_ip_at')
        batch_op.drop_index(batch_op.f('ix_login_failures_at'))

    op.drop_table('login_failures')
    op.drop_table('feeds')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_at'))

    op.drop_table('audit_events')

