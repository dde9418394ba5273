"""escalations: severity, assignee, deadline, acknowledgement; complaints: categories and first handler

Revision ID: 0011
Revises: 0010_followups
Create Date: 2026-12-06 03:00:00

Escalations become a closed loop (issue 14 item 13): each has a severity, an
assignee (the attending doctor's username, else the site's on-call doctor), a
deadline (working hours from the chain's ``escalation_hours``), and is
acknowledged and then resolved by the assignee. Existing rows keep what they
had: severity ``clinical``, no assignee, the deadline left empty (shown as not
due). Complaints keep every category of one call in ``categories`` and the role
that answers first in ``handler_role`` (issue 14 item 14).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010_followups'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('severity', sa.String(length=20), nullable=False, server_default='clinical'))
        batch_op.add_column(sa.Column('assignee', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('due_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('acknowledged_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('opened_by', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_escalations_assignee', ['assignee'], unique=False)
    with op.batch_alter_table('complaints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('categories', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('handler_role', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('complaints', schema=None) as batch_op:
        batch_op.drop_column('handler_role')
        batch_op.drop_column('categories')
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.drop_index('ix_escalations_assignee')
        batch_op.drop_column('opened_by')
        batch_op.drop_column('acknowledged_at')
        batch_op.drop_column('due_at')
        batch_op.drop_column('assignee')
        batch_op.drop_column('severity')
