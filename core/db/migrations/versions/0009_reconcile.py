"""tasks say why reconcile cancelled them

Revision ID: 0009
Revises: 0005
Create Date: 2026-12-06 03:30:00

``followup schedule`` reconciles tasks with their episodes and protocols
(core/scheduling.py): an open task whose milestone no longer applies, or whose
episode was cancelled, is cancelled, and ``tasks.cancel_reason`` says which.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("cancel_reason", sa.String(40), nullable=True))


def downgrade() -> None:
    # Not batch mode: recreating tasks on SQLite would break the day-count triggers that name it.
    op.execute("ALTER TABLE tasks DROP COLUMN cancel_reason")
