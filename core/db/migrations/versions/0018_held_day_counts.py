"""a bulk writer of calls counts its own day rows: PostgreSQL's triggers can stand aside

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 13:00:00

A call history loaded in bulk (core/callhistory.py) adds up the day rows of its
calls, answers and tasks as it builds them and writes them once, grouped
(core.db.rollups.held_back). On SQLite it drops the three row triggers inside its
transaction. PostgreSQL's statement triggers on inserted calls, inserted answers and
updated tasks now stand aside while the transaction has set
``followup.counts_held`` (``set_config(..., true)``: no other transaction sees it).
At a million tasks each of them joined its transition table with every task or call
(a hash of the whole table per statement). The counts themselves do not change:
nothing is recounted.
"""

from __future__ import annotations

from alembic import op

from core.db import rollups

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        rollups.drop_triggers(conn)
        rollups.create_triggers(conn)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        rollups.drop_triggers(conn)
        rollups.create_triggers(conn, held=False)
