"""a bulk writer appends its day rows beside the day tables instead of upserting them

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 15:30:00

A call history loaded in bulk (core/callhistory.py) adds up the day rows of its
calls, answers and tasks (core.db.rollups.DayCounts). Upserting them into the day
tables cost about a third of the raw load itself: each row looked up its key and
most were new. They now go into ``report_task_day_parts``, ``report_call_day_parts``
and ``report_answer_day_parts``: the day tables' columns, any number of rows per
key, appended as they are (``COPY`` on PostgreSQL). A report sums a day table with
its parts (it sums days anyway); ``followup db recount`` recounts into the day
tables and empties the parts. Downgrading adds the parts into the day tables first.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.db import rollups
from core.db.models import UTCDateTime

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def _keys(*names: str) -> list[sa.Column]:
    return [sa.Column('day', sa.Date(), nullable=False), sa.Column('site', sa.String(64), nullable=False),
            sa.Column('specialty', sa.String(64), nullable=False),
            *(sa.Column(n, sa.String(64), nullable=False) for n in names)]


def _counts(*names: str) -> list[sa.Column]:
    return [sa.Column(n, sa.Integer(), nullable=False, server_default='0') for n in names]


def upgrade() -> None:
    op.create_table(rollups.TASKS.parts, *_keys(), *_counts(*rollups.TASKS.counts))
    op.create_table(rollups.CALLS.parts, *_keys('by'), *_counts(*rollups.CALLS.counts),
                    sa.Column('first_at', UTCDateTime(), nullable=True),
                    sa.Column('last_at', UTCDateTime(), nullable=True))
    op.create_table(rollups.ANSWERS.parts, *_keys('question', 'dimension'), *_counts('n'),
                    sa.Column('total', sa.Float(), nullable=False, server_default='0'),
                    *_counts('top2', 'promoters', 'detractors'))
    for rollup in rollups.ROLLUPS:
        op.create_index(f"ix_{rollup.parts}_day_site", rollup.parts, ["day", "site"])


def downgrade() -> None:
    rollups.fold(op.get_bind())  # the parts' counts into the day tables: nothing is lost
    for rollup in rollups.ROLLUPS:
        op.drop_index(f"ix_{rollup.parts}_day_site", table_name=rollup.parts)
        op.drop_table(rollup.parts)
