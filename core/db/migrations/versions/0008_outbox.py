"""outbox of messages (SMS, WeChat, email), opt-outs per channel, patients' e-mail and WeChat openid

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-06 03:00:00

Every message goes through ``outbox``: one row per (task, kind, channel, seq);
``seq`` is 0 unless a message is resent on purpose. Senders claim rows like
coordinators claim calls (status re-checked in the UPDATE, SKIP LOCKED on
PostgreSQL). Attempts get the channel they were made on (``phone``, or
``questionnaire`` for a patient's own answers). ``service_keys`` holds the
questionnaire links' signing key when the chain names none in the environment.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.db.models import UTCDateTime

revision = '0008'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'outbox',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.Integer(), nullable=True),
        sa.Column('patient_id', sa.Integer(), nullable=False),
        sa.Column('site', sa.String(64), nullable=False),
        sa.Column('channel', sa.String(20), nullable=False),
        sa.Column('kind', sa.String(32), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('locale', sa.String(10), nullable=False),
        sa.Column('recipient', sa.String(200), nullable=True),
        sa.Column('subject', sa.String(200), nullable=True),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('html', sa.Text(), nullable=True),
        sa.Column('link', sa.Text(), nullable=True),
        sa.Column('template', sa.String(100), nullable=True),
        sa.Column('params', sa.JSON(), nullable=True),
        sa.Column('status', sa.String(20), nullable=False),
        sa.Column('tries', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('next_try_at', UTCDateTime(), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=True),
        sa.Column('claimed_until', UTCDateTime(), nullable=True),
        sa.Column('sender', sa.String(64), nullable=True),
        sa.Column('provider_id', sa.String(200), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('queued_at', UTCDateTime(), nullable=False),
        sa.Column('sent_at', UTCDateTime(), nullable=True),
        sa.Column('delivered_at', UTCDateTime(), nullable=True),
        sa.Column('answered_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_outbox_task_id_tasks')),
        sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_outbox_patient_id_patients')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
        sa.UniqueConstraint('task_id', 'kind', 'channel', 'seq', name=op.f('uq_outbox_task_id')),
    )
    op.create_index('ix_outbox_due', 'outbox', ['status', 'next_try_at'])
    op.create_index('ix_outbox_patient', 'outbox', ['patient_id', 'sent_at'])
    op.create_index('ix_outbox_provider', 'outbox', ['channel', 'provider_id'])
    op.create_table(
        'patient_optouts',
        sa.Column('patient_id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(20), nullable=False),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.Column('by', sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_patient_optouts_patient_id_patients')),
        sa.PrimaryKeyConstraint('patient_id', 'channel', name=op.f('pk_patient_optouts')),
    )
    op.create_table(
        'service_keys',
        sa.Column('name', sa.String(64), nullable=False),
        sa.Column('value', sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_service_keys')),
    )
    # Plain ADD COLUMN (no batch copy on SQLite: the rollup triggers of 0004 name these tables).
    op.add_column('patients', sa.Column('email', sa.String(200), nullable=True))
    op.add_column('patients', sa.Column('wechat_openid', sa.String(64), nullable=True))
    op.add_column('attempts', sa.Column('channel', sa.String(20), nullable=False, server_default='phone'))


def downgrade() -> None:
    op.drop_column('attempts', 'channel')  # SQLite 3.35+ drops a column in place
    op.drop_column('patients', 'wechat_openid')
    op.drop_column('patients', 'email')
    op.drop_table('service_keys')
    op.drop_table('patient_optouts')
    op.drop_index('ix_outbox_provider', table_name='outbox')
    op.drop_index('ix_outbox_patient', table_name='outbox')
    op.drop_index('ix_outbox_due', table_name='outbox')
    op.drop_table('outbox')
