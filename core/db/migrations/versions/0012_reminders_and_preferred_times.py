"""reminders keep their event; patients may prefer a calling time

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 04:00:00

A reminder (a milestone with ``before:``) keeps the offset of the event it prepares
in ``tasks.before_event``, part of its timing snapshot, so reconcile notices a site
moving that event. ``patients.preferred_call_time`` is the patient's own calling
time (``18:00-20:00``), imported, shown on the call card and followed by routine calls.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("before_event", sa.String(16), nullable=True))
    op.add_column("patients", sa.Column("preferred_call_time", sa.String(32), nullable=True))


def downgrade() -> None:
    # Not batch mode: recreating tasks on SQLite would break the day-count triggers that name it.
    op.execute("ALTER TABLE tasks DROP COLUMN before_event")
    op.execute("ALTER TABLE patients DROP COLUMN preferred_call_time")
