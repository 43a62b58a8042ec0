"""plugin failure log

Revision ID: c6a2d9e4f1b7
Revises: b3e8f1a4c6d2
Create Date: 2026-11-22 00:55:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c6a2d9e4f1b7'
down_revision = 'b3e8f1a4c6d2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('plugin_failure_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=True),
    sa.Column('plugin', sa.String(length=100), nullable=False),
    sa.Column('hour', sa.DateTime(), nullable=False),
    sa.Column('hook', sa.String(length=100), nullable=False),
    sa.Column('error', sa.String(length=1000), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('last_at', sa.DateTime(), nullable=False),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plugin_failure_log'))
    )
    with op.batch_alter_table('plugin_failure_log', schema=None) as batch_op:
        batch_op.create_index('ix_plugin_failure_log_lookup', ['provider_id', 'plugin', 'hour'], unique=False)


def downgrade():
    with op.batch_alter_table('plugin_failure_log', schema=None) as batch_op:
        batch_op.drop_index('ix_plugin_failure_log_lookup')

    op.drop_table('plugin_failure_log')
