"""worklist index on next_attempt_at; attempts by time

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 14:00:00

The worklist and claims select a site's open tasks whose next attempt is due by
the end of a day, ordered by that time: (site, status, next_attempt_at) reads
exactly those rows, already in order. The old (site, status, window_start) also
read every open task whose window had opened but whose call is weeks away (the
long windows of 6- and 12-month calls), then sorted. Reports select attempts by
time (calls per coordinator, answers of the period): ``attempts.at``.
See docs/performance.md.
"""

from __future__ import annotations

from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_worklist')
        batch_op.create_index('ix_tasks_worklist', ['site', 'status', 'next_attempt_at'], unique=False)
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attempts_at'), ['at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attempts_at'))
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_worklist')
        batch_op.create_index('ix_tasks_worklist', ['site', 'status', 'window_start'], unique=False)
