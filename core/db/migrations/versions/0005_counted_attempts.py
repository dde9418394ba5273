"""attempts that count: attempts.counted, tasks.attempts_logged

Revision ID: 0005
Revises: 0008
Create Date: 2026-12-06 03:00:00

A failed attempt less than the minimum gap after the previous counted failed
attempt of the same task (a dropped call redialled at once) is stored but does
not count towards the unsuccessful limit (core/calls.py). ``attempts.counted``
says which ones count (every existing attempt did); ``tasks.attempts`` and
``tasks.failed_attempts`` stay the counted ones and ``tasks.attempts_logged`` is
every attempt row. The reports' day counts count every attempt
(docs/metrics.md): their triggers now read ``attempts_logged``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.db import rollups

revision = '0005'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    op.add_column('attempts', sa.Column('counted', sa.Boolean(), nullable=False, server_default=sa.true()))
    op.add_column('tasks', sa.Column('attempts_logged', sa.Integer(), nullable=False, server_default='0'))
    rollups.drop_triggers(conn)  # the backfill changes no count: the rows are recounted below anyway
    op.execute('UPDATE tasks SET attempts_logged = (SELECT COUNT(*) FROM attempts WHERE attempts.task_id = tasks.id) '
               'WHERE EXISTS (SELECT 1 FROM attempts WHERE attempts.task_id = tasks.id)')
    rollups.rebuild(conn, parts=False)
    rollups.create_triggers(conn)


def downgrade() -> None:
    conn = op.get_bind()
    rollups.drop_triggers(conn)
    op.drop_column('tasks', 'attempts_logged')  # SQLite 3.35+ drops it in place (no table copy)
    op.drop_column('attempts', 'counted')
    rollups.rebuild(conn, rollups.LEGACY_ATTEMPTS, parts=False)
    rollups.create_triggers(conn, rollups.LEGACY_ATTEMPTS)
