"""attempts carry their task's site; covering index for reports; answers by attempt

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 14:00:00

Reports count a period's calls per coordinator and site: ``attempts.site`` (the
task's site, set when the call is recorded, backfilled here) and the index
``(at, site, by, outcome)`` answer that from the index alone, without visiting
the attempts or tasks tables (it replaces the plain ``(at)`` index of 0002).
Answers are reached from the period's attempts: ``answers(attempt_id)``.
On PostgreSQL, episodes keep 10% of each page free so that marking an episode
scheduled is a HOT update (no new index entries). See docs/performance.md.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Added with a default, then filled in place: recreating a table of millions of attempts
    # (what changing nullability takes on SQLite) would also check every answer's foreign key.
    with op.batch_alter_table('answers', schema=None) as batch_op:
        batch_op.create_index('ix_answers_attempt_id', ['attempt_id'], unique=False)
    op.add_column('attempts', sa.Column('site', sa.String(length=64), nullable=False, server_default=''))
    op.execute(
        "UPDATE attempts SET site = (SELECT tasks.site FROM tasks WHERE tasks.id = attempts.task_id)"
    )
    op.drop_index('ix_attempts_at', table_name='attempts')
    op.create_index('ix_attempts_report', 'attempts', ['at', 'site', 'by', 'outcome'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE episodes SET (fillfactor = 90)')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE episodes RESET (fillfactor)')
    with op.batch_alter_table('answers', schema=None) as batch_op:
        batch_op.drop_index('ix_answers_attempt_id')
    op.drop_index('ix_attempts_report', table_name='attempts')
    op.create_index('ix_attempts_at', 'attempts', ['at'], unique=False)
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_column('site')
