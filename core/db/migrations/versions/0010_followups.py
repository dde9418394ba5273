"""follow-ups beyond the protocol: bookings, the month-end sweep, recordings and QA, referrals, greetings

Revision ID: 0010_followups
Revises: 0009
Create Date: 2026-12-06 03:00:00

Issue 15. Nullable columns only (added in place, no table rebuild on SQLite, so the
day-count triggers of 0004 stay as they are): ``tasks.booked_at`` (the appointment a
call booked), ``tasks.swept_at`` (the month-end sweep reopened this unreachable
follow-up), ``attempts.recording``; on patients the days to greet
(``birthday``, ``anniversary`` as ``MM-DD``), ``value_tier`` and ``referred_by_id``.
Two tables: ``qa_reviews`` (a supervisor's score of a call) and ``referrals``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.db.models import UTCDateTime

revision = '0010_followups'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('tasks', sa.Column('booked_at', UTCDateTime(), nullable=True))
    op.add_column('tasks', sa.Column('swept_at', UTCDateTime(), nullable=True))
    op.add_column('attempts', sa.Column('recording', sa.Text(), nullable=True))
    op.add_column('patients', sa.Column('birthday', sa.String(length=5), nullable=True))
    op.add_column('patients', sa.Column('anniversary', sa.String(length=5), nullable=True))
    op.add_column('patients', sa.Column('value_tier', sa.String(length=32), nullable=True))
    op.add_column('patients', sa.Column('referred_by_id', sa.Integer(), nullable=True))
    op.create_index('ix_patients_referred_by_id', 'patients', ['referred_by_id'], unique=False)
    op.create_table(
        'qa_reviews',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('attempt_id', sa.Integer(), nullable=False),
        sa.Column('score', sa.Integer(), nullable=False),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('by', sa.String(length=64), nullable=False),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['attempt_id'], ['attempts.id'], name='fk_qa_reviews_attempt_id_attempts'),
        sa.PrimaryKeyConstraint('id', name='pk_qa_reviews'),
        sa.UniqueConstraint('attempt_id', name='uq_qa_reviews_attempt_id'),
    )
    op.create_table(
        'referrals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('referrer_id', sa.Integer(), nullable=False),
        sa.Column('referred_id', sa.Integer(), nullable=True),
        sa.Column('site', sa.String(length=64), nullable=False),
        sa.Column('task_id', sa.Integer(), nullable=True),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.Column('by', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['referrer_id'], ['patients.id'], name='fk_referrals_referrer_id_patients'),
        sa.ForeignKeyConstraint(['referred_id'], ['patients.id'], name='fk_referrals_referred_id_patients'),
        sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name='fk_referrals_task_id_tasks'),
        sa.PrimaryKeyConstraint('id', name='pk_referrals'),
    )
    op.create_index('ix_referrals_at', 'referrals', ['at', 'site'], unique=False)
    op.create_index('ix_referrals_referrer_id', 'referrals', ['referrer_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_referrals_referrer_id', table_name='referrals')
    op.drop_index('ix_referrals_at', table_name='referrals')
    op.drop_table('referrals')
    op.drop_table('qa_reviews')
    op.drop_index('ix_patients_referred_by_id', table_name='patients')
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch rebuild of tasks or attempts would break the
    # day-count triggers of 0004, which name those tables.
    for table, column in (('patients', 'referred_by_id'), ('patients', 'value_tier'), ('patients', 'anniversary'),
                          ('patients', 'birthday'), ('attempts', 'recording'), ('tasks', 'swept_at'),
                          ('tasks', 'booked_at')):
        op.execute(f'ALTER TABLE {table} DROP COLUMN {column}')
