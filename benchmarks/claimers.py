"""Claiming processes for benchmarks/scale.py (a module of its own: spawned children import it by name).

Each child gets ready (imports, configuration, a connection), waits at a barrier with the others and
the parent, then claims ``per_claim`` patients at a time until told there is nothing left, and puts
``(claims, task ids, finished at)`` or its error on a queue. Two kinds of claimer:

* ``framework``: ``core.claims.claim`` in a ``session_scope`` (BEGIN IMMEDIATE on SQLite), as
  ``followup claim`` runs it;
* ``queue``: the plain queue a developer would write by hand: lock the next ``per_claim`` free
  patients ``FOR UPDATE SKIP LOCKED`` (SQLite: inside BEGIN IMMEDIATE) and mark their free tasks,
  with no priorities, sites' days, holds, colleagues or audit rows.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

QUEUE_PG = """
WITH picked AS (
    SELECT p.id FROM patients p
    WHERE p.id IN (SELECT t.patient_id FROM tasks t
                   WHERE t.status = 'open' AND t.assignee IS NULL LIMIT %(scan)s)
    LIMIT %(n)s FOR UPDATE OF p SKIP LOCKED)
UPDATE tasks SET assignee = %(user)s, claimed_until = %(until)s
WHERE patient_id IN (SELECT id FROM picked) AND status = 'open' AND assignee IS NULL
RETURNING id
"""
QUEUE_SQLITE_PICK = ("SELECT DISTINCT patient_id FROM tasks WHERE status = 'open' AND assignee IS NULL "
                     "LIMIT ?")
QUEUE_SQLITE_TAKE = ("UPDATE tasks SET assignee = ?, claimed_until = ? WHERE patient_id IN ({}) "
                     "AND status = 'open' AND assignee IS NULL RETURNING id")


def run(kind: str, url: str, chain_yaml: str, user: str, per_claim: int, now: str, barrier: Any, out: Any) -> None:
    try:
        claims, ids = (_framework if kind == "framework" else _queue)(url, chain_yaml, user, per_claim,
                                                                       datetime.fromisoformat(now), barrier)
        out.put((user, claims, ids, time.monotonic()))
    except BaseException as exc:  # reported by the parent
        out.put((user, -1, [f"{type(exc).__name__}: {exc}"], time.monotonic()))
        try:
            barrier.abort()
        except Exception:
            pass


def _framework(url: str, chain_yaml: str, user: str, per_claim: int, now: datetime,
               barrier: Any) -> tuple[int, list[int]]:
    from core.claims import claim
    from core.config import load_config
    from core.db.engine import get_engine, session_scope

    config = load_config(Path(chain_yaml))
    sites = list(config.sites)
    with get_engine(url).connect():
        pass
    claims, ids = 0, []
    barrier.wait()
    while True:
        with session_scope(url, immediate=True) as session:
            got = claim(session, config, user=user, sites=sites, count=per_claim, now=now)
        if not got:
            return claims, ids
        claims += 1
        ids += got


def _queue(url: str, chain_yaml: str, user: str, per_claim: int, now: datetime,
           barrier: Any) -> tuple[int, list[int]]:
    from datetime import timedelta

    until = now + timedelta(minutes=30)
    claims, ids = 0, []
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.split("///", 1)[1], timeout=60, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=60000")
        barrier.wait()
        while True:
            conn.execute("BEGIN IMMEDIATE")
            patients = [r[0] for r in conn.execute(QUEUE_SQLITE_PICK, (per_claim,))]
            got = [r[0] for r in conn.execute(QUEUE_SQLITE_TAKE.format(",".join("?" * len(patients))),
                                              (user, until.isoformat(" "), *patients))] if patients else []
            conn.execute("COMMIT")
            if not got:
                return claims, ids
            claims += 1
            ids += got
    import psycopg

    from core.db.engine import normalize_url

    dsn = normalize_url(url).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:  # each transaction() a real one
        barrier.wait()
        while True:
            with conn.transaction():
                got = [r[0] for r in conn.execute(QUEUE_PG, {"scan": per_claim * 20, "n": per_claim,
                                                             "user": user, "until": until})]
            if not got:  # every patient it looked at was locked by others: done only if nothing is free
                if conn.execute("SELECT 1 FROM tasks WHERE status = 'open' AND assignee IS NULL LIMIT 1").fetchone():
                    continue
                return claims, ids
            claims += 1
            ids += got
