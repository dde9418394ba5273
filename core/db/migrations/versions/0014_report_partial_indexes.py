"""two small partial indexes for the report's follow-up figures

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 05:15:00

The month-end sweep's figures select the tasks swept in the period (``swept_at``)
and the greetings' the greeting tasks due in it (``purpose``): neither column was in
an index, so each report read the whole tasks table twice (at a million tasks, most
of a report's time). Both indexes hold only those few tasks. SQLite matches a
partial index's predicate textually: core/reports/followups.py repeats them word
for word.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

SWEPT = "swept_at IS NOT NULL"
GREETINGS = "purpose = 'greeting'"


def upgrade() -> None:
    op.create_index('ix_tasks_swept', 'tasks', ['swept_at'], unique=False,
                    sqlite_where=sa.text(SWEPT), postgresql_where=sa.text(SWEPT))
    op.create_index('ix_tasks_greetings', 'tasks', ['due_at'], unique=False,
                    sqlite_where=sa.text(GREETINGS), postgresql_where=sa.text(GREETINGS))


def downgrade() -> None:
    op.drop_index('ix_tasks_greetings', table_name='tasks')
    op.drop_index('ix_tasks_swept', table_name='tasks')
