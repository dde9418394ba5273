"""a partial index of the interruption reasons the report counts

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 05:30:00

The report counts the interruption reasons given on the period's calls: a few
answers among all the scores. Read from the period's calls, each report looked up
the answers of every call of the month (at a million tasks, about 0.3 s). This
index holds only those answers; the report's query states its predicate word for
word (core/reports/queries.py, ``INTERRUPTIONS_PREDICATE``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

INTERRUPTIONS = "question = 'interruption_reason'"


def upgrade() -> None:
    op.create_index('ix_answers_interruptions', 'answers', ['attempt_id'], unique=False,
                    sqlite_where=sa.text(INTERRUPTIONS), postgresql_where=sa.text(INTERRUPTIONS))


def downgrade() -> None:
    op.drop_index('ix_answers_interruptions', table_name='answers')
