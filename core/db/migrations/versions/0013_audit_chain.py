"""the audit log becomes a tamper-evident chain and keeps the real time of each row

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 03:00:00

``audit_log.recorded_at``: the real time a row was written (``at`` stays the
clock the command ran on, ``--now`` in a demo); ``prev_hash`` and ``hash``: each
row's sha256 over the previous row's hash and its own content (core/audit.py).
Rows already there are chained in id order, their ``recorded_at`` taken from
``at``. ``followup audit verify`` walks the chain.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.db.models import UTCDateTime

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recorded_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('hash', sa.String(length=64), nullable=True))
    from core.audit import chain_existing

    table = sa.table(
        'audit_log', sa.column('id', sa.Integer()), sa.column('at', UTCDateTime()), sa.column('user', sa.String()),
        sa.column('action', sa.String()), sa.column('entity', sa.String()), sa.column('entity_id', sa.Integer()),
        sa.column('patient_id', sa.Integer()), sa.column('detail', sa.JSON()),
        sa.column('recorded_at', UTCDateTime()), sa.column('prev_hash', sa.String()), sa.column('hash', sa.String()),
    )
    chain_existing(op.get_bind(), table)


def downgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_column('hash')
        batch_op.drop_column('prev_hash')
        batch_op.drop_column('recorded_at')
