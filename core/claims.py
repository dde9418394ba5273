"""Claiming work: two coordinators never receive the same patient, and nobody is told "nothing to
claim" while work is free.

A claim holds a patient's due tasks for ``claim_hold`` (chain config); expired holds simply become
eligible again. "Due" is by each task's own site's end of day (``day``, default today there): one
claim may cover sites in different timezones, and a site's tasks are never cut at another site's
midnight.

Each round of a claim runs three statements:

1. the next candidate patients (a few times as many as wanted), read through the worklist index
   (site, status, next_attempt_at): the eligible tasks in claim order (clinical first, then by
   next attempt) with a ``LIMIT``, the first row of each patient giving its place; no aggregate
   over every due task of the sites;
2. the first of them in that order that no other claim has locked, locked ``FOR UPDATE SKIP
   LOCKED`` (their *patients* rows, PostgreSQL) with a ``LIMIT``, leaving out patients who must
   not be called or whose calls a colleague holds: claimers at the same moment take different
   patients of the same candidates, and a patient with two due tasks never goes half to one
   coordinator and half to another;
3. ``UPDATE tasks ... RETURNING`` of the locked patients' tasks that are *still* eligible: the
   status and hold are re-checked against the newest committed row, so a claim that committed
   meanwhile wins.

A claimer that loses a race (a patient another claim took between 1 and 3, or one locked by
another claimer) goes on with the next patients in a new round, until it has ``count`` patients
or no candidate is left; each round is a new statement, so on PostgreSQL (READ COMMITTED) it sees
what the others committed. The audit rows are written in one INSERT. SQLite has no row locks:
there the transaction starts with ``BEGIN IMMEDIATE`` (claimers wait their turn, busy timeout)
and the same rounds run alone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ARRAY, Integer, and_, bindparam, case, exists, func, literal, or_, select, update
from sqlalchemy.orm import Session, aliased

from core.config import ChainConfig
from core.db.models import Patient, Task
from core.db.uow import outside, unit_of_work
from core.tasklist import local_iso
from core.vocab import MESSAGE_CHANNELS, TaskStatus, Urgency
from core.worklist import end_of_day

ROWS_PER_PATIENT = 4  # task rows read per candidate patient (most have 1-4 due)
POOL = 4  # candidates per patient wanted: claimers at once lock different ones (SKIP LOCKED)


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


def _eligible(groups: int) -> Any:
    """Eligible now, with bound parameters: ``now``, and per cutoff group ``sites_i`` (expanding) and ``cutoff_i``."""
    return and_(
        # Due by the end of the day of the task's own site: one branch per distinct cutoff.
        or_(*(
            and_(Task.site.in_(bindparam(f"sites_{i}", expanding=True)), Task.window_start < bindparam(f"cutoff_{i}"),
                 Task.next_attempt_at < bindparam(f"cutoff_{i}"))
            for i in range(groups)
        )),
        Task.status == TaskStatus.OPEN,
        Task.channel.not_in(MESSAGE_CHANNELS),  # messages are sent by `followup send`, not called
        # A first call may be taken any time on its day; a retry (after a failed attempt, at least
        # min_gap later in another calling window) or a callback the patient asked for not before its time.
        or_(Task.attempts == 0, Task.next_attempt_at <= bindparam("now")),
        or_(Task.claimed_until.is_(None), Task.claimed_until < bindparam("now")),
    )


def _held_by_colleague() -> Any:
    """The patient has a task a colleague holds: none of the patient's calls go to anyone else meanwhile."""
    held = aliased(Task)
    return exists().where(
        held.patient_id == Patient.id, held.status == TaskStatus.OPEN, held.assignee != bindparam("user"),
        held.claimed_until.is_not(None), held.claimed_until >= bindparam("now"),
    )


@lru_cache(maxsize=16)
def _statements(groups: int, postgres: bool, tiers: tuple[str, ...]) -> tuple[Any, Any, Any]:
    """The three statements of a round, built once per shape (building them costs more CPU than running them):
    the candidates, the lock, the update. Parameters: see :func:`_eligible`, and ``tried``, ``rows``,
    ``pool``, ``need``, ``user``, ``until``."""
    eligible = _eligible(groups)
    rank = case((Task.urgency == Urgency.CLINICAL, 0), else_=1)
    candidates = (
        select(Task.patient_id)
        .where(eligible, Task.patient_id.not_in(bindparam("tried", expanding=True)))
        .order_by(rank, Task.next_attempt_at, Task.id)
        .limit(bindparam("rows"))
    )
    if tiers:  # valued patients next after clinical calls, as on the worklist
        candidates = candidates.join(Patient, Patient.id == Task.patient_id).order_by(None).order_by(
            rank, _tier_rank(tiers), Task.next_attempt_at, Task.id)
    lock = select(Patient.id).where(Patient.id.in_(bindparam("pool", expanding=True)),
                                    Patient.do_not_contact.is_(False), Patient.phone_invalid.is_(False),
                                    ~_held_by_colleague())
    if postgres:  # in the pool's order, the first ``need`` no other claim holds
        lock = (lock.order_by(func.array_position(bindparam("order", type_=ARRAY(Integer)), Patient.id))
                .limit(bindparam("need")).with_for_update(of=Patient, skip_locked=True))
    take = (
        update(Task.__table__)
        .where(Task.patient_id.in_(bindparam("locked", expanding=True)), eligible)
        .values(assignee=bindparam("user"), claimed_until=bindparam("until"), updated_at=bindparam("now"))
        .returning(Task.id, Task.patient_id, Task.site)
    )
    return candidates, lock, take


def _candidates(session: Session, statement: Any, params: dict[str, Any], tried: set[int], wanted: int) -> list[int]:
    """The next ``wanted`` patients not tried yet, in claim order: clinical first, then by next attempt.

    Reads task rows in that order with a LIMIT (the worklist index gives the day's due tasks of a
    site); a patient's first row is its place. Reads more rows when a few patients fill them.
    """
    limit = max(wanted * ROWS_PER_PATIENT, 16)
    while True:
        rows = session.execute(statement, {**params, "tried": sorted(tried) or [0], "rows": limit}).scalars().all()
        patients = list(dict.fromkeys(rows))
        if len(patients) >= wanted or len(rows) < limit:
            return patients[:wanted]
        limit *= 4


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
    cutoffs = _cutoffs(config, sites, now, day)
    postgres = session.get_bind().dialect.name == "postgresql"
    tiers = tuple(t.casefold() for t in config.model.value_tiers)
    candidates, lock, take = _statements(len(cutoffs), postgres, tiers)
    params: dict[str, Any] = {"now": now, "user": user, "until": until}
    for i, (cutoff, codes) in enumerate(cutoffs.items()):
        params[f"sites_{i}"], params[f"cutoff_{i}"] = codes, cutoff
    # a claim changes no day count: no turns, so it never waits for the sites' calls (core/db/uow.py)
    with unit_of_work(session, config, sites=sites, user=user, now=now, action="claim", turns=False) as uow:
        rows: list[Any] = []
        claimed: set[int] = set()
        tried: set[int] = set()
        while len(claimed) < count:
            need = count - len(claimed)
            # More candidates than needed: claimers running at once lock different ones of the same pool.
            pool = _candidates(session, candidates, params, tried, need * POOL)
            if not pool:
                break
            if postgres:
                locked = list(session.execute(lock, {**params, "pool": pool, "order": pool, "need": need}).scalars())
            else:  # no row locks (SQLAlchemy would drop the clause): BEGIN IMMEDIATE serialises the claims
                free = set(session.execute(lock, {**params, "pool": pool}).scalars())
                locked = [pid for pid in pool if pid in free][:need]
            if not locked:  # the pool is all held by claims in flight or not to be called: look further
                tried.update(pool)
                continue
            tried.update(locked)
            got = session.execute(take, {**params, "locked": locked}).all()
            rows += got
            claimed.update(patient for _, patient, _ in got)
        rows.sort()
        uow.audit_many("claim", [
            dict(entity="task", entity_id=task_id, patient_id=patient_id,
                 detail={"until": local_iso(until, config.timezone_of(site))})
            for task_id, patient_id, site in rows
        ])
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


def _tier_rank(tiers: tuple[str, ...]) -> Any:
    """Valued patients next after clinical calls, as on the worklist (ChainConfig.tier_rank, in SQL)."""
    if not tiers:
        return literal(0)
    return case({tier: rank for rank, tier in enumerate(tiers)}, value=func.lower(Patient.value_tier),
                else_=len(tiers))
