"""Claiming work: two coordinators never receive the same patient, and nobody is told "nothing to
claim" while work is free.

A claim holds a patient's due tasks for ``claim_hold`` (chain config); expired holds simply become
eligible again. "Due" is by each task's own site's end of day (``day``, default today there): one
claim may cover sites in different timezones, and a site's tasks are never cut at another site's
midnight.

Each round of a claim does two things, written in SQL once per shape and run as they are (no ORM,
lists bound as one array, no per-claim compiling); on PostgreSQL both are one statement (the
candidates its first ``WITH`` query), on SQLite two:

1. the next candidate patients (a few times as many as wanted): the eligible tasks in claim order
   (clinical first, valued patients next, then by next attempt) with a ``LIMIT``, the first row of
   each patient giving its place. The open tasks are held in that order by ``ix_tasks_claim``
   (migration 0017), their hold last, so the read walks the index, passes over held tasks inside it
   and stops after the first free rows; the valued patients' tasks are a small read of their own
   (``ix_patients_value_tier``) merged in. No sort or aggregate over every due task of the sites;
2. the claim itself, one statement: the first of them in that order that no other claim has locked,
   locked ``FOR UPDATE SKIP LOCKED`` (their *patients* rows, PostgreSQL) with a ``LIMIT``, leaving
   out patients who must not be called or whose calls a colleague holds (claimers at the same moment
   take different patients of the same candidates, and a patient with two due tasks never goes half
   to one coordinator and half to another); the ``UPDATE`` of the locked patients' tasks that are
   *still* eligible (status and hold re-checked against the newest committed row, so a claim that
   committed meanwhile wins); and on PostgreSQL their audit rows, written waiting to be chained
   (core/audit.py: the claims of several coordinators commit together, whoever holds the chain's
   lock seals them).

A claimer that loses a race (a patient another claim took between 1 and 2, or one locked by
another claimer: a whole pool of them, and nothing is taken) goes on with the next patients in a
new round, until it has ``count`` patients or no candidate is left; each round is a new
statement, so on PostgreSQL (READ COMMITTED) it sees what the others committed. SQLite has no row
locks: there the transaction starts with ``BEGIN IMMEDIATE`` (claimers wait their turn, busy
timeout), the same rounds run alone, and the audit rows are chained at commit (one INSERT).
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from core.config import ChainConfig
from core.db.models import Task
from core.db.uow import inside, outside, unit_of_work
from core.tasklist import local_iso
from core.vocab import MESSAGE_CHANNELS, TaskStatus, Urgency
from core.worklist import end_of_day

ROWS_PER_PATIENT = 4  # task rows read per candidate patient (most have 1-4 due)
# Candidates per patient wanted. PostgreSQL: claimers at once lock different ones (SKIP LOCKED); with 8
# claimers in flight a pool of 4 per patient was often all locked by the others (half the statements, 2.1 a
# claim), 8 per patient takes 1.2 statements a claim for 0.4 ms more of the candidates' read. SQLite: one
# claimer at a time, the pool only passes over patients not to be called.
POOL, POOL_SQLITE = 8, 4
ACTION, ENTITY = "claim", "task"  # the audit rows' action and entity
# A task nobody ever held, in the hold's column of the claim index (migration 0017: the same words)
NEVER_PG, NEVER_SQLITE = "'-infinity'", "''"


_ZONES: dict[tuple[int, tuple[str, ...]], tuple[Any, list[tuple[Any, list[str]]]]] = {}


def _zones(config: ChainConfig, sites: list[str]) -> list[tuple[Any, list[str]]]:
    """The sites grouped by timezone, remembered per configuration and list of sites (a coordinator claims
    with the same sites again and again; 50 sites' lookups were a tenth of a claim's own Python)."""
    key = (id(config), tuple(sites))
    known = _ZONES.get(key)
    if known is not None and known[0]() is config:
        return known[1]
    zones: dict[Any, list[str]] = {}
    for code in dict.fromkeys(sites):
        zones.setdefault(config.timezone_of(code), []).append(code)
    if len(_ZONES) > 64:
        _ZONES.clear()
    _ZONES[key] = (weakref.ref(config), list(zones.items()))
    return _ZONES[key][1]


def _cutoffs(config: ChainConfig, sites: list[str], now: datetime, day: date | None) -> dict[datetime, list[str]]:
    """Each site's end of day (``day``, default today, in the site's own timezone), sites grouped by that instant.

    A coordinator may cover sites in different timezones: each site's tasks are cut at its own
    midnight, not at the first site's. Sites sharing a timezone (the usual case) make one group.
    """
    groups: dict[datetime, list[str]] = {}
    for tz, codes in _zones(config, sites):
        groups.setdefault(end_of_day(day or now.astimezone(tz).date(), tz), []).extend(codes)
    return groups


def _utc(moment: datetime, postgres: bool) -> Any:
    """A bound instant as the column stores it (naive UTC; SQLite: its text form, as core.db.models.UTCDateTime)."""
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    return naive if postgres else naive.isoformat(" ", "microseconds")


def _quoted(words: Any) -> str:
    return ", ".join("'" + str(w).replace("'", "''") + "'" for w in words)


@lru_cache(maxsize=64)
def _statements(groups: tuple[tuple[str, ...], ...], postgres: bool, tiers: int) -> tuple[str, str]:
    """The two statements of a round (SQL for ``exec_driver_sql``), built once per shape: the candidates
    and the claim. ``groups``: the sites of each cutoff group, written into the SQL (codes are
    ``[A-Za-z0-9_-]+``, core/config.py): a constant list is looked up by hash for every task row, also
    in the prepared statement's generic plan, where a bound list is searched element by element.
    Parameters: ``now``, ``cutoff_i`` per group, ``tried``, ``rows``, ``tier_i``; ``pool``, ``need``,
    ``user``, ``until``; PostgreSQL also ``recorded``, ``details`` (a JSON list: each group's audit detail)."""
    if postgres:
        def p(name: str) -> str:
            return f"%({name})s"
    else:
        def p(name: str) -> str:
            return f":{name}"

    open_, clinical = _quoted([TaskStatus.OPEN]), _quoted([Urgency.CLINICAL])
    due = " OR ".join(f"(t.site IN ({_quoted(codes)}) AND t.window_start < {p(f'cutoff_{i}')} "
                      f"AND t.next_attempt_at < {p(f'cutoff_{i}')})" for i, codes in enumerate(groups))
    # Due by the end of the day of the task's own site (one branch per distinct cutoff); messages are
    # sent by `followup send`, not called; a first call may be taken any time on its day, a retry (after
    # a failed attempt, at least min_gap later in another calling window) or a callback the patient asked
    # for not before its time; nobody's hold on it, or an expired one (written as the claim index's last
    # column, migration 0017, so that held tasks are passed over inside the index).
    eligible = (f"({due}) AND t.status = {open_} AND t.channel NOT IN ({_quoted(MESSAGE_CHANNELS)}) "
                f"AND (t.attempts = 0 OR t.next_attempt_at <= {p('now')}) "
                f"AND COALESCE(t.claimed_until, {NEVER_PG if postgres else NEVER_SQLITE}) < {p('now')}")
    # The claim order, as ix_tasks_claim (migration 0017) holds the open tasks: clinical first, then by
    # next attempt. Read through it with a LIMIT, the read stops after the first free rows.
    first = f"CASE WHEN t.urgency = {clinical} THEN 0 ELSE 1 END"
    tried = (f"t.patient_id <> ALL({p('tried')})" if postgres
             else f"t.patient_id NOT IN (SELECT value FROM json_each({p('tried')}))")
    if not tiers:
        candidates = (f"SELECT t.patient_id FROM tasks t WHERE {eligible} AND {tried} "
                      f"ORDER BY {first}, t.next_attempt_at, t.id LIMIT {p('rows')}")
        ordered = (f"SELECT t.patient_id, {first} AS c, 0 AS r, t.next_attempt_at AS n, t.id AS tid FROM tasks t "
                   f"WHERE {eligible} AND {tried} ORDER BY {first}, t.next_attempt_at, t.id LIMIT {p('rows')}")
    else:
        # Valued patients next after clinical calls, as on the worklist (ChainConfig.tier_rank): their tasks
        # are one small read (ix_patients_value_tier), everybody's the walk through the claim index (no
        # patient looked up per row: a valued patient's row there ranks after its own row of the valued read,
        # which is the one kept, or is past the LIMIT anyway); merged in the worklist's order (clinical,
        # tier, next attempt).
        names = ", ".join(p(f"tier_{i}") for i in range(tiers))
        rank = "CASE lower(p.value_tier) " + " ".join(f"WHEN {p(f'tier_{i}')} THEN {i}" for i in range(tiers))
        candidates = (
            f"SELECT patient_id FROM ("
            f"SELECT * FROM (SELECT t.patient_id, {first} AS c, {rank} END AS r, t.next_attempt_at AS n, t.id "
            f"FROM patients p JOIN tasks t ON t.patient_id = p.id "
            f"WHERE p.value_tier IS NOT NULL AND lower(p.value_tier) IN ({names}) AND {eligible} AND {tried} "
            f"ORDER BY c, r, n, t.id LIMIT {p('rows')}) AS valued "
            f"UNION ALL "
            f"SELECT * FROM (SELECT t.patient_id, {first} AS c, {tiers} AS r, t.next_attempt_at AS n, t.id "
            f"FROM tasks t WHERE {eligible} AND {tried} "
            f"ORDER BY {first}, t.next_attempt_at, t.id LIMIT {p('rows')}) AS others"
            f") AS candidates ORDER BY c, r, n, id LIMIT {p('rows')}")
        ordered = (candidates.replace("SELECT patient_id FROM (", "SELECT patient_id, c, r, n, id AS tid FROM (", 1))
    # Not to be called, or a colleague holds one of the patient's calls: none of them go to anyone else meanwhile.
    callable_ = (f"p.do_not_contact IS FALSE AND p.phone_invalid IS FALSE AND NOT EXISTS ("
                 f"SELECT 1 FROM tasks h WHERE h.patient_id = p.id AND h.status = {open_} "
                 f"AND h.assignee <> {p('user')} AND h.claimed_until >= {p('now')})")
    hold = f"assignee = {p('user')}, claimed_until = {p('until')}, updated_at = {p('now')}"
    if not postgres:  # no row locks: BEGIN IMMEDIATE serialises the claims; the first ``need`` callable ones
        take = (f"UPDATE tasks AS t SET {hold} WHERE t.patient_id IN ("
                f"SELECT p.id FROM json_each({p('pool')}) AS pool JOIN patients p ON p.id = pool.value "
                f"WHERE {callable_} ORDER BY pool.key LIMIT {p('need')}) AND {eligible} "
                f"RETURNING id, patient_id, site")
        return candidates, take
    from core.audit import TRY_LOCK, WAITING_ID

    # the audit row's detail: that of the task's site's cutoff group (``details``, one per group)
    group = ("0" if len(groups) == 1 else
             "CASE " + " ".join(f"WHEN taken.site IN ({_quoted(codes)}) THEN {i}" for i, codes in enumerate(groups))
             + " END")

    # The candidates and the claim in one statement: the pool (the first ``wanted`` patients in claim
    # order, each placed by its first task); in the pool's order, the first ``need`` no other claim holds;
    # their still eligible tasks; the audit rows, waiting to be chained; and whether this transaction seals
    # (core/audit.py). One row out, each list an array: the locked patients, the tasks taken (ids, patients,
    # sites, in id order), whether this transaction seals, and the pool.
    take = f"""
WITH cand AS ({ordered}),
pool AS (SELECT f.id, row_number() OVER (ORDER BY f.c, f.r, f.n, f.tid) AS ord
         FROM (SELECT DISTINCT ON (cand.patient_id) cand.patient_id AS id, cand.c, cand.r, cand.n, cand.tid
               FROM cand ORDER BY cand.patient_id, cand.c, cand.r, cand.n, cand.tid) AS f
         ORDER BY ord LIMIT {p('wanted')}),
locked AS (SELECT p.id FROM patients p JOIN pool ON pool.id = p.id
           WHERE p.id = ANY(ARRAY(SELECT pool.id FROM pool)) AND {callable_}
           ORDER BY pool.ord LIMIT {p('need')} FOR UPDATE OF p SKIP LOCKED),
taken AS (UPDATE tasks t SET {hold} FROM locked WHERE t.patient_id = locked.id AND {eligible}
          RETURNING t.id, t.patient_id, t.site),
audited AS (INSERT INTO audit_log (id, at, recorded_at, "user", action, entity, entity_id, patient_id, detail)
            SELECT {WAITING_ID}, {p('now')}, {p('recorded')}, {p('user')}, {_quoted([ACTION])}, {_quoted([ENTITY])},
                   taken.id, taken.patient_id, CAST(CAST({p('details')} AS jsonb) -> {group} AS json)
            FROM taken ORDER BY taken.id),
seal AS (SELECT {TRY_LOCK} AS sealer)
SELECT (SELECT array_agg(locked.id) FROM locked), (SELECT array_agg(taken.id ORDER BY taken.id) FROM taken),
       (SELECT array_agg(taken.patient_id ORDER BY taken.id) FROM taken),
       (SELECT array_agg(taken.site ORDER BY taken.id) FROM taken), seal.sealer, (SELECT array_agg(pool.id) FROM pool)
FROM seal"""
    return candidates, take


def _candidates(session: Session, statement: str, params: dict[str, Any], tried: set[int], wanted: int) -> list[int]:
    """The next ``wanted`` patients not tried yet, in claim order: clinical first, then by next attempt.

    Reads task rows in that order with a LIMIT (the worklist index gives the day's due tasks of a
    site); a patient's first row is its place. Reads more rows when a few patients fill them.
    """
    limit = max(wanted * ROWS_PER_PATIENT, 16)
    conn = session.connection()
    tried_list: Any = sorted(tried) or [0]
    if conn.dialect.name != "postgresql":
        tried_list = json.dumps(tried_list)
    while True:
        rows = [r[0] for r in conn.exec_driver_sql(statement, {**params, "tried": tried_list, "rows": limit}).all()]
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
    tiers = [t.casefold() for t in config.model.value_tiers]
    candidates, take = _statements(tuple(map(tuple, cutoffs.values())), postgres, len(tiers))
    params: dict[str, Any] = {"now": _utc(now, postgres), "user": user,
                              "until": _utc(until, postgres)}
    shown: list[dict[str, Any]] = []  # each group's audit detail: the hold's end in its sites' own time
    for i, (cutoff, codes) in enumerate(cutoffs.items()):
        params[f"cutoff_{i}"] = _utc(cutoff, postgres)
        shown.append({"until": local_iso(until, config.timezone_of(codes[0]))})  # a group shares one timezone
    for i, tier in enumerate(tiers):
        params[f"tier_{i}"] = tier
    if postgres:
        params["recorded"] = datetime.now(UTC).replace(tzinfo=None)
        params["details"] = json.dumps(shown)
    # a claim changes no day count: no turns, so it never waits for the sites' calls (core/db/uow.py)
    with unit_of_work(session, config, sites=sites, user=user, now=now, action=ACTION, turns=False) as uow:
        conn = session.connection()
        rows: list[tuple[int, int, str]] = []
        claimed: set[int] = set()
        tried: set[int] = set()
        sealer = False
        while len(claimed) < count:
            need = count - len(claimed)
            # More candidates than needed: claimers running at once lock different ones of the same pool.
            if postgres:  # one statement reads the pool and takes from it; one row back
                wanted = need * POOL
                inside(conn, take)  # the driver's own cursor: no result object for one row (core/db/uow.py)
                with conn.connection.driver_connection.cursor() as cursor:
                    locked, task_ids, patient_ids, task_sites, seals, pool = cursor.execute(take, {
                        **params, "tried": sorted(tried) or [0], "rows": max(wanted * ROWS_PER_PATIENT, 16),
                        "wanted": wanted, "need": need}).fetchone()
                sealer = sealer or bool(seals)
                if not pool:
                    break
                locked = locked or []
                got = list(zip(task_ids or [], patient_ids or [], task_sites or [], strict=True))
            else:
                pool = _candidates(session, candidates, params, tried, need * POOL_SQLITE)
                if not pool:
                    break
                got = [tuple(r) for r in conn.exec_driver_sql(take, {**params, "pool": json.dumps(pool), "need": need})]
                # alone (BEGIN IMMEDIATE): the pool's patients not taken may not be called or a colleague holds them
                locked = pool
            if not locked:  # the pool is all held by claims in flight or not to be called: look further
                tried.update(pool)
                continue
            tried.update(locked)
            rows += got
            claimed.update(patient for _, patient, _ in got)
        rows.sort()
        if postgres:
            if rows or sealer:
                from core.audit import written_waiting

                written_waiting(session, sealer)
        else:
            group = {code: i for i, codes in enumerate(cutoffs.values()) for code in codes}
            uow.audit_many(ACTION, [dict(entity=ENTITY, entity_id=task_id, patient_id=patient_id,
                                         detail=shown[group[site]]) for task_id, patient_id, site in rows])
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
