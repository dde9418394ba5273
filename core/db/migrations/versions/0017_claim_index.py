"""the open tasks in claim order, with their hold; valued patients by tier

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 07:40:00

A claim takes the first free patients in the worklist's order: clinical calls
first, then by next attempt (core/claims.py). Reading them sorted every due task
of the coordinator's sites to keep a few. ``ix_tasks_claim`` holds the open tasks
in that order, the hold last (``COALESCE(claimed_until, <never>)``, the words
core/claims.py writes: held tasks are passed over inside the index): the read is
an index walk that stops after the first free rows. The valued patients' tasks
(``value_tiers``, after clinical calls) are read apart through
``ix_patients_value_tier``. SQLite matches an expression and a partial index's
predicate word for word: core/claims.py repeats them.
"""

from __future__ import annotations

from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

ORDER = "(CASE WHEN urgency = 'clinical' THEN 0 ELSE 1 END), next_attempt_at, id"
NEVER = {"postgresql": "'-infinity'", "sqlite": "''"}  # core.claims.NEVER_PG, NEVER_SQLITE


def upgrade() -> None:
    never = NEVER[op.get_bind().dialect.name]
    op.execute(f"CREATE INDEX ix_tasks_claim ON tasks ({ORDER}, (COALESCE(claimed_until, {never}))) "
               "WHERE status = 'open'")
    op.execute("CREATE INDEX ix_patients_value_tier ON patients ((lower(value_tier))) "
               "WHERE value_tier IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX ix_patients_value_tier")
    op.execute("DROP INDEX ix_tasks_claim")
