"""Claiming work: two coordinators never receive the same patient.

A claim holds a patient's due tasks for ``claim_hold`` (chain config); expired
holds simply become eligible again. On PostgreSQL one statement does it::

    UPDATE tasks SET assignee = :user, claimed_until = :until
    WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) AND status = 'open' AND <due by its site's end of day>
      AND <hold expired>
    RETURNING id, patient_id, site

"End of day" is each task's own site's midnight (``day``, default today there): one claim may
cover sites in different timezones, and a site's tasks are never cut at another site's midnight.

The inner SELECT locks the *patients* rows (``FOR UPDATE SKIP LOCKED``), not
just task rows: a patient with two due tasks could otherwise go half to one
coordinator and half to another. The status and hold re-check in the outer
UPDATE is re-evaluated against the newest committed row, so a claim that
committed meanwhile wins. SQLAlchemy drops SKIP LOCKED on SQLite without a word;
there the transaction starts with ``BEGIN IMMEDIATE`` (one writer at a time) and
the same re-check keeps it correct.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, case, exists, func, literal, or_, select, update
from sqlalchemy.orm import Session, aliased

from core.channels import MESSAGE_CHANNELS
from core.config import ChainConfig
from core.db.models import Patient, Task
from core.db.uow import outside, unit_of_work
from core.tasklist import local_iso
from core.vocab import TaskStatus, Urgency
from core.worklist import end_of_day


def _cutoffs(config: ChainConfig, sites: list[str], now: datetime, day: date | None) -> dict[datetime, list[str]]:
    """Each site's end of day (``day``, default today, in the site's own timezone), sites grouped by that instant.

    A coordinator may cover sites in different timezones: each site's tasks are cut at its own
    midnight, not at the first site's. Sites sharing a timezone (the usual case) make one group.
    """
    groups: dict[datetime, list[str]] = {}
    for code in dict.fromkeys(sites):
        tz = config.timezone_of(code)
        groups.setdefault(end_of_day(day or now.astimezone(tz).date(), tz), []).append(code)
    return groups


def _eligible(now: datetime, cutoffs: dict[datetime, list[str]]) -> Any:
    return and_(
        # Due by the end of the day of the task's own site: one branch per distinct cutoff.
        or_(*(
            and_(Task.site.in_(codes), Task.window_start < cutoff, Task.next_attempt_at < cutoff)
            for cutoff, codes in cutoffs.items()
        )),
        Task.status == TaskStatus.OPEN,
        Task.channel.not_in(MESSAGE_CHANNELS),  # messages are sent by `followup send`, not called
        # A first call may be taken any time on its day; a retry (after a failed attempt, at least
        # min_gap later in another calling window) or a callback the patient asked for not before its time.
        or_(Task.attempts == 0, Task.next_attempt_at <= now),
        or_(Task.claimed_until.is_(None), Task.claimed_until < now),
    )


def _held_by_colleague(user: str, now: datetime) -> Any:
    """The patient has a task a colleague holds: none of the patient's calls go to anyone else meanwhile."""
    held = aliased(Task)
    return exists().where(
        held.patient_id == Patient.id, held.status == TaskStatus.OPEN, held.assignee != user,
        held.claimed_until.is_not(None), held.claimed_until >= now,
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
    from core import access

    sites = access.sites_for(config, user, access.CALLS, sites) if sites else sites
    if not sites:
        return []
    until = config.model.defaults.attempt_policy.claim_hold.add_to(now)
    eligible = _eligible(now, _cutoffs(config, sites, now, day))
    priority = (
        select(
            Task.patient_id.label("pid"),
            func.min(case((Task.urgency == Urgency.CLINICAL, 0), else_=1)).label("urg"),
            func.min(Task.next_attempt_at).label("due"),
        )
        .where(eligible)
        .group_by(Task.patient_id)
        .subquery()
    )
    picked = (
        select(Patient.id)
        .join(priority, priority.c.pid == Patient.id)
        .where(Patient.do_not_contact.is_(False), Patient.phone_invalid.is_(False), ~_held_by_colleague(user, now))
        .order_by(priority.c.urg, _tier_rank(config), priority.c.due, Patient.id)
        .limit(count)
        .with_for_update(of=Patient, skip_locked=True)
    )
    if session.get_bind().dialect.name == "postgresql":
        # A materialised CTE runs once. As a plain IN (subquery) PostgreSQL may rescan it per
        # task row, and a rescan with SKIP LOCKED and LIMIT can answer differently while other
        # claims commit: a patient's first task claimed and the second not.
        chosen = picked.cte("picked").prefix_with("MATERIALIZED")
        picked_ids = select(chosen.c.id).scalar_subquery()
    else:  # SQLite: already inside BEGIN IMMEDIATE; materialise the choice first
        picked_ids = list(session.execute(picked).scalars())
        if not picked_ids:
            return []
    stmt = (
        update(Task)
        .where(Task.patient_id.in_(picked_ids), eligible)
        .values(assignee=user, claimed_until=until, updated_at=now)
        .returning(Task.id, Task.patient_id, Task.site)
        .execution_options(synchronize_session=False)
    )
    # a claim changes no day count: no turns, so it never waits for the sites' calls (core/db/uow.py)
    with unit_of_work(session, config, sites=sites, user=user, now=now, action="claim", turns=False) as uow:
        rows = sorted(session.execute(stmt).all())
        for task_id, patient_id, site in rows:
            uow.audit("claim", entity="task", entity_id=task_id, patient_id=patient_id,
                      detail={"until": local_iso(until, config.timezone_of(site))})
    return [task_id for task_id, _, _ in rows]


def naive_select(session: Session, *, sites: list[str], count: int, now: datetime, cutoff: datetime) -> list[int]:
    """Step 1 of the naive claim: read the next free tasks, without locking anything."""
    rows = session.execute(
        select(Task.id)
        .where(Task.site.in_(sites), Task.status == TaskStatus.OPEN, Task.next_attempt_at < cutoff,
               or_(Task.claimed_until.is_(None), Task.claimed_until < now))
        .order_by(Task.next_attempt_at, Task.id)
        .limit(count)
    ).scalars().all()
    return list(rows)


def naive_update(session: Session, ids: list[int], *, user: str, until: datetime) -> None:
    """Step 2 of the naive claim: write the hold without re-checking that the tasks are still free.

    Deliberately outside a unit of work, like everything about the naive claim (a negative control).
    """
    if ids:
        with outside(session):
            session.execute(
                update(Task).where(Task.id.in_(ids)).values(assignee=user, claimed_until=until)
                .execution_options(synchronize_session=False)
            )


def naive_claim(
    session: Session, *, user: str, sites: list[str], count: int, now: datetime, cutoff: datetime,
    between: Callable[[], Any] | None = None,
) -> list[int]:
    """The tempting, wrong way (read, then write without locking or re-check). Tests use it as the negative control.

    ``between`` runs after the read and before the write: a test passes a
    ``threading.Barrier.wait`` so every worker reads before any writes, which
    makes the race (and the duplicates it causes) certain instead of lucky.
    """
    ids = naive_select(session, sites=sites, count=count, now=now, cutoff=cutoff)
    if between is not None:
        between()
    naive_update(session, ids, user=user, until=now.replace(year=now.year + 1))
    return ids


def release(session: Session, task_ids: list[int], user: str, now: datetime | None = None) -> int:
    with unit_of_work(session, user=user, now=now or datetime.now(UTC), action="release", turns=False):
        result = session.execute(
            update(Task).where(Task.id.in_(task_ids), Task.assignee == user, Task.status == TaskStatus.OPEN)
            .values(claimed_until=None).execution_options(synchronize_session=False)
        )
    return result.rowcount or 0


def _tier_rank(config: ChainConfig) -> Any:
    """Valued patients next after clinical calls, as on the worklist (ChainConfig.tier_rank, in SQL)."""
    tiers = [t.casefold() for t in config.model.value_tiers]
    if not tiers:
        return literal(0)
    return case({tier: rank for rank, tier in enumerate(tiers)}, value=func.lower(Patient.value_tier),
                else_=len(tiers))
