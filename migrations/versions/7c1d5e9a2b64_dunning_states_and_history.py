"""dunning: organisations' dunning state and history

Revision ID: 7c1d5e9a2b64
Revises: d205cb3c9c11
Create Date: 2026-11-23 10:12:40.118204

"""
from alembic import op
import sqlalchemy as sa

import kassa.models.types


# revision identifiers, used by Alembic.
revision = '7c1d5e9a2b64'
down_revision = 'd205cb3c9c11'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('dunning_states',
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('phase', sa.String(length=40), nullable=False),
    sa.Column('phase_name', sa.String(length=100), nullable=False),
    sa.Column('started_on', sa.Date(), nullable=False),
    sa.Column('entered_on', sa.Date(), nullable=False),
    sa.Column('anchor_date', sa.Date(), nullable=False),
    sa.Column('banner', sa.Boolean(), nullable=False),
    sa.Column('restricted', sa.Boolean(), nullable=False),
    sa.Column('suspended_subscription_ids', sa.JSON(), nullable=False),
    sa.Column('overdue_amount', kassa.models.types.Amount(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('next_step', sa.String(length=100), nullable=False),
    sa.Column('next_on', sa.Date(), nullable=True),
    sa.Column('last_retry_on', sa.Date(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_dunning_states_org_id_organisations')),
    sa.ForeignKeyConstraint(['provider_id'], ['organisations.id'], name=op.f('fk_dunning_states_provider_id_organisations')),
    sa.PrimaryKeyConstraint('org_id', name=op.f('pk_dunning_states'))
    )
    with op.batch_alter_table('dunning_states', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dunning_states_provider_id'), ['provider_id'], unique=False)

    op.create_table('dunning_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('phase', sa.String(length=40), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('summary', sa.String(length=500), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('key', sa.String(length=120), nullable=True),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_dunning_events_org_id_organisations')),
    sa.ForeignKeyConstraint(['provider_id'], ['organisations.id'], name=op.f('fk_dunning_events_provider_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dunning_events')),
    sa.UniqueConstraint('key', name=op.f('uq_dunning_events_key'))
    )
    with op.batch_alter_table('dunning_events', schema=None) as batch_op:
        batch_op.create_index('ix_dunning_events_org', ['org_id', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('dunning_events', schema=None) as batch_op:
        batch_op.drop_index('ix_dunning_events_org')

    op.drop_table('dunning_events')
    with op.batch_alter_table('dunning_states', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dunning_states_provider_id'))

    op.drop_table('dunning_states')
