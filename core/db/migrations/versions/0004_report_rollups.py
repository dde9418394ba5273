"""per-day counts for reports, kept by triggers; tasks carry their episode's trigger

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 16:00:00

Reports sum per-day rows (``report_task_days``, ``report_call_days``,
``report_answer_days``) instead of reading every task, call and answer of their
periods. Triggers on tasks, attempts and answers keep them exact
(core/db/rollups.py); this migration counts what is already there. Days are
counted at ``report_settings.offset_minutes`` east of UTC: 480 (China) until
``followup db upgrade`` sets the chain's own. Tasks get their episode's
``trigger`` and a partial index on the tasks of sales leads (distinct leads of
a period cannot be summed from days). See docs/performance.md.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.db import rollups
from core.db.models import LEADS_PREDICATE, UTCDateTime

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _keys(*names: str) -> list[sa.Column]:
    return [sa.Column('day', sa.Date(), nullable=False), sa.Column('site', sa.String(64), nullable=False),
            sa.Column('specialty', sa.String(64), nullable=False),
            *(sa.Column(n, sa.String(64), nullable=False) for n in names)]


def _counts(*names: str) -> list[sa.Column]:
    return [sa.Column(n, sa.Integer(), nullable=False, server_default='0') for n in names]


def upgrade() -> None:
    op.add_column('tasks', sa.Column('trigger', sa.String(32), nullable=False, server_default='procedure'))
    op.execute('UPDATE tasks SET "trigger" = (SELECT episodes."trigger" FROM episodes '
               'WHERE episodes.id = tasks.episode_id)')
    op.create_index('ix_tasks_leads', 'tasks', ['due_at'], unique=False,
                    sqlite_where=sa.text(LEADS_PREDICATE), postgresql_where=sa.text(LEADS_PREDICATE))

    op.create_table('report_settings', sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('offset_minutes', sa.Integer(), nullable=False),
                    sa.Column('deferred', sa.Integer(), nullable=False, server_default='0'),
                    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_settings')))
    op.execute(f'INSERT INTO report_settings (id, offset_minutes) VALUES (1, {rollups.DEFAULT_OFFSET})')
    op.create_table('report_task_days', *_keys(), *_counts(*rollups.TASKS.counts),
                    sa.PrimaryKeyConstraint('day', 'site', 'specialty', name=op.f('pk_report_task_days')))
    op.create_table('report_call_days', *_keys('by'), *_counts(*rollups.CALLS.counts),
                    sa.Column('first_at', UTCDateTime(), nullable=True),
                    sa.Column('last_at', UTCDateTime(), nullable=True),
                    sa.PrimaryKeyConstraint('day', 'site', 'specialty', 'by', name=op.f('pk_report_call_days')))
    op.create_table('report_answer_days', *_keys('question', 'dimension'), *_counts('n'),
                    sa.Column('total', sa.Float(), nullable=False, server_default='0'),
                    *_counts('top2', 'promoters', 'detractors'),
                    sa.PrimaryKeyConstraint('day', 'site', 'specialty', 'question', 'dimension',
                                            name=op.f('pk_report_answer_days')))
    conn = op.get_bind()
    # as they were at this revision: a task's attempts column (0005 counts attempts_logged)
    rollups.rebuild(conn, rollups.LEGACY_ATTEMPTS, parts=False)
    rollups.create_triggers(conn, rollups.LEGACY_ATTEMPTS)


def downgrade() -> None:
    conn = op.get_bind()
    rollups.drop_triggers(conn)
    for table in ('report_answer_days', 'report_call_days', 'report_task_days', 'report_settings'):
        op.drop_table(table)
    op.drop_index('ix_tasks_leads', table_name='tasks')
    op.drop_column('tasks', 'trigger')  # SQLite 3.35+ drops it in place (no table copy)
