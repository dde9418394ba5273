"""audit rows waiting to be chained take their (negative) ids from a sequence of their own

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 05:30:00

On PostgreSQL a transaction writes its audit rows *waiting* (``id`` negative, no
hash) unless it holds the chain's lock; the holder seals them into the chain with
ids from ``audit_log``'s own sequence (core/audit.py). The waiting ids come from
``audit_waiting_id_seq`` so that sealed rows keep consecutive ids. SQLite chains
every row when it commits (one writer): nothing to add there.
"""

from __future__ import annotations

from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE audit_waiting_id_seq")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE audit_waiting_id_seq")
