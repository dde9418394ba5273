"""Claiming work: two coordinators never receive the same patient.

A claim holds a patient's due tasks for ``claim_hold`` (chain config); expired
holds simply become eligible again. On PostgreSQL one statement does it::

    UPDATE tasks SET assignee = :user, claimed_until = :until
    WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) AND status = 'open' AND <hold expired>
    RETURNING id, patient_id

The inner SELECT locks the *patients* rows (``FOR UPDATE SKIP LOCKED``), not
just task rows: a patient with two due tasks could otherwise go half to one
coordinator and half to another. The status and hold re-check in the outer
UPDATE is re-evaluated against the newest committed row, so a claim that
committed meanwhile wins. SQLAlchemy drops SKIP LOCKED on SQLite without a word;
there the transaction starts with ``BEGIN IMMEDIATE`` (one writer at a time) and
the same re-check keeps it correct.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from core.config import ChainConfig
from core.db.models import Patient, Task
from core.worklist import end_of_day


def _eligible(now: datetime, cutoff: datetime, sites: list[str]) -> Any:
    return and_(
        Task.site.in_(sites),
        Task.status == "open",
        Task.window_start < cutoff,
        Task.next_attempt_at < cutoff,
        or_(Task.claimed_until.is_(None), Task.claimed_until < now),
    )


def claim(
    session: Session,
    config: ChainConfig,
    *,
    user: str,
    sites: list[str],
    count: int,
    now: datetime,
    day: date | None = None,
) -> list[int]:
    """Give ``user`` the next ``count`` patients' due tasks; returns the claimed task ids."""
    if not sites:
        return []
    tz = config.site(sites[0]).timezone
    cutoff = end_of_day(day or now.astimezone(tz).date(), tz)
    until = config.model.defaults.attempt_policy.claim_hold.add_to(now)
    eligible = _eligible(now, cutoff, sites)
    priority = (
        select(
            Task.patient_id.label("pid"),
            func.min(case((Task.urgency == "clinical", 0), else_=1)).label("urg"),
            func.min(Task.next_attempt_at).label("due"),
        )
        .where(eligible)
        .group_by(Task.patient_id)
        .subquery()
    )
    picked = (
        select(Patient.id)
        .join(priority, priority.c.pid == Patient.id)
        .where(Patient.do_not_contact.is_(False))
        .order_by(priority.c.urg, priority.c.due, Patient.id)
        .limit(count)
        .with_for_update(of=Patient, skip_locked=True)
    )
    if session.get_bind().dialect.name == "postgresql":
        picked_ids = picked.scalar_subquery()
    else:  # SQLite: already inside BEGIN IMMEDIATE; materialise the choice first
        picked_ids = list(session.execute(picked).scalars())
        if not picked_ids:
            return []
    stmt = (
        update(Task)
        .where(Task.patient_id.in_(picked_ids), eligible)
        .values(assignee=user, claimed_until=until, updated_at=now)
        .returning(Task.id)
        .execution_options(synchronize_session=False)
    )
    ids = sorted(session.execute(stmt).scalars())
    return ids


def naive_claim(session: Session, *, user: str, sites: list[str], count: int, now: datetime, cutoff: datetime) -> list[int]:
    """The tempting, wrong way (read, then write without locking or re-check). Tests use it as the negative control."""
    rows = session.execute(
        select(Task.id, Task.patient_id)
        .where(Task.site.in_(sites), Task.status == "open", Task.next_attempt_at < cutoff,
               or_(Task.claimed_until.is_(None), Task.claimed_until < now))
        .order_by(Task.next_attempt_at, Task.id)
        .limit(count)
    ).all()
    ids = [r.id for r in rows]
    if ids:
        session.execute(
            update(Task).where(Task.id.in_(ids)).values(assignee=user, claimed_until=now.replace(year=now.year + 1))
            .execution_options(synchronize_session=False)
        )
    return ids


def release(session: Session, task_ids: list[int], user: str) -> int:
    result = session.execute(
        update(Task).where(Task.id.in_(task_ids), Task.assignee == user, Task.status == "open")
        .values(claimed_until=None).execution_options(synchronize_session=False)
    )
    return result.rowcount or 0
