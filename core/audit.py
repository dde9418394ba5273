"""The audit log: every change and every release of contact details, with user and time (never names or phones).

Tamper-evident: each row carries ``hash = sha256(prev_hash + its content)``, where
``prev_hash`` is the hash of the row before it (ids ascending). :func:`verify` walks the
chain and names the first row that was edited, inserted or removed out of order
(docs/security.md says what it cannot see).

Chaining never makes writers wait for each other. SQLite has one writer at a time: a
transaction chains its rows when it commits. On PostgreSQL a transaction with audit rows
tries the chain's lock when it commits, without waiting (``pg_try_advisory_xact_lock``,
one lock per audit_log table). The one that gets it *seals*: it takes every *waiting* row
it sees (committed by others, or its own), chains them and then its own new rows in one
INSERT with ids from audit_log's sequence, and keeps the lock until its commit ends, so
the next sealer starts from its head. One that does not get it commits at once with its
rows waiting (a negative id from ``audit_waiting_id_seq``, no hash), for the next audited
transaction to seal, or for ``audit verify``, which seals before it walks and counts the
rows still waiting (committed meanwhile). A claim writes its rows waiting and tries the
lock in its own statement (core/claims.py), and seals at commit if it got the lock. Claims by eight
coordinators at once thus commit together (one disk flush for several) instead of one
after another.

Every row carries two times: ``at``, the clock the command ran on (``--now`` in a
demo), and ``recorded_at``, the real time it was written.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import event, func, insert, select, text
from sqlalchemy.orm import Session

from core.db.models import AuditEntry

GENESIS = "0" * 64
AUDIT_LOCK = 7204  # pg_advisory_xact_lock(AUDIT_LOCK, audit_log's oid): one transaction seals at a time
_PENDING = "audit_pending"


def audit(
    session: Session,
    *,
    user: str,
    at: datetime,
    action: str,
    entity: str,
    entity_id: int | None = None,
    patient_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an audit row; it is written and chained when ``session`` commits (nothing if it rolls back)."""
    session.info.setdefault(_PENDING, []).append(dict(
        at=at, recorded_at=datetime.now(UTC), user=user, action=action, entity=entity, entity_id=entity_id,
        patient_id=patient_id, detail=detail or {},
    ))


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(" ", "microseconds")


def row_hash(prev_hash: str, row: Any) -> str:
    """The hash of one row: its content (every column but the hashes) after the previous row's hash."""
    content = [row.id, _iso(row.at), _iso(row.recorded_at), row.user, row.action, row.entity, row.entity_id,
               row.patient_id, row.detail]
    canonical = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


_SEALER = "audit_sealer"  # Session.info: this transaction already holds the chain's lock (True) or tried (False)
_COLUMNS = ("at", "recorded_at", "user", "action", "entity", "entity_id", "patient_id", "detail")
# The waiting rows, taken out (the DELETE sees what was committed before it and this transaction's own),
# each with a new id; and ``:own`` more ids for rows not written yet. The head is the newest sealed row
# (the largest id, read from the index whatever the statistics say; none if all are waiting): only the
# lock's holder writes positive ids, and the previous holder committed before it let go.
_SEAL = """
WITH moved AS (DELETE FROM audit_log WHERE id < 0
               RETURNING id, at, recorded_at, "user", action, entity, entity_id, patient_id, detail)
SELECT moved.*, nextval(pg_get_serial_sequence('audit_log', 'id')) AS new_id,
       (SELECT hash FROM audit_log WHERE id = (SELECT max(id) FROM audit_log)) AS head
FROM moved
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, nextval(pg_get_serial_sequence('audit_log', 'id')),
       (SELECT hash FROM audit_log WHERE id = (SELECT max(id) FROM audit_log))
FROM generate_series(1, :own)
"""
# The expression giving a waiting row its (negative) id: statements that write waiting rows use it.
WAITING_ID = "-nextval('audit_waiting_id_seq')"  # migration 0016: sealed rows keep consecutive ids
# The chain's lock: one per audit_log table (two schemas of one database are two chains).
_LOCK_KEY = f"{AUDIT_LOCK}, CAST(CAST(CAST('audit_log' AS regclass) AS oid) AS integer)"
TRY_LOCK = f"pg_try_advisory_xact_lock({_LOCK_KEY})"


# PostgreSQL: the sealed rows in one statement, one parameter (not a statement per row).
_INSERT_SEALED = """
INSERT INTO audit_log (id, at, recorded_at, "user", action, entity, entity_id, patient_id, detail, prev_hash, hash)
SELECT r.id, r.at, r.recorded_at, r."user", r.action, r.entity, r.entity_id, r.patient_id, r.detail, r.prev_hash, r.hash
FROM json_to_recordset(CAST(:rows AS json)) AS r(id integer, at timestamp, recorded_at timestamp, "user" text,
     action text, entity text, entity_id integer, patient_id integer, detail json, prev_hash text, hash text)
"""


def _write(session: Session, prev: str, ids: list[int], rows: list[dict[str, Any]], postgres: bool = False) -> None:
    """Chain ``rows`` after ``prev`` with these ``ids`` and write them in one INSERT."""
    chained = []
    for row_id, values in zip(ids, rows, strict=True):
        row = {"id": row_id, **values, "prev_hash": prev}
        prev = row["hash"] = row_hash(prev, SimpleNamespace(**row))
        chained.append(row)
    if postgres:  # the instants as hashed (naive UTC, microseconds): stored exactly so
        for row in chained:
            row["at"], row["recorded_at"] = _iso(row["at"]), _iso(row["recorded_at"])
        session.execute(text(_INSERT_SEALED), {"rows": json.dumps(chained, ensure_ascii=False, default=str)})
    else:
        session.execute(insert(AuditEntry.__table__), chained)


def seal(session: Session, own: list[dict[str, Any]] | None = None) -> int:
    """PostgreSQL, holding the chain's lock: chain the waiting rows, then ``own`` (rows not written yet).

    Returns how many rows were sealed. One statement takes the waiting rows out with their new ids
    and the head, one INSERT writes them chained.
    """
    own = own or []
    rows = session.execute(text(_SEAL), {"own": len(own)}).all()
    if not rows:
        return 0
    waiting = sorted((r for r in rows if r.id is not None), key=lambda r: -r.id)  # in the order written
    values = [{"at": r.at, "recorded_at": r.recorded_at, "user": r.user, "action": r.action, "entity": r.entity,
               "entity_id": r.entity_id, "patient_id": r.patient_id, "detail": r.detail} for r in waiting]
    _write(session, rows[0].head or GENESIS, sorted(r.new_id for r in rows), values + own, postgres=True)
    return len(rows)


def written_order() -> tuple[Any, Any]:
    """Order by these for the order rows were written: the chain (ids ascending), then the rows waiting
    (PostgreSQL), which will be sealed after it in the order they were written (ids descending from -1)."""
    return AuditEntry.id < 0, func.abs(AuditEntry.id)


def unsealed(session: Session) -> int:
    """Rows written and not chained yet (PostgreSQL: committed while another transaction was sealing)."""
    return session.execute(select(func.count()).where(AuditEntry.id < 0)).scalar_one()


def _chain_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None) or []
    sealer = session.info.pop(_SEALER, None)
    if not pending and sealer is None:
        return
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        if sealer is None:
            sealer = session.execute(text(f"SELECT {TRY_LOCK}")).scalar_one()
        if sealer:
            seal(session, pending)
        elif pending:  # another transaction is sealing: these wait for the next one
            session.execute(insert(AuditEntry.__table__).values(id=text(WAITING_ID)), pending)
        return
    # SQLite: this transaction is the only writer (BEGIN IMMEDIATE, or the write lock its first write took)
    last = session.execute(select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)).first()
    start = (last.id if last else 0) + 1
    _write(session, (last.hash if last else None) or GENESIS, list(range(start, start + len(pending))), pending)


def written_waiting(session: Session, sealer: bool) -> None:
    """A statement of this transaction wrote waiting rows itself (PostgreSQL, :data:`WAITING_ID`), and
    took :data:`TRY_LOCK` with the answer ``sealer``: the commit seals them if it got the lock."""
    session.info[_SEALER] = bool(session.info.get(_SEALER)) or bool(sealer)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    _chain_pending(session)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_SEALER, None)


@dataclass
class Verdict:
    rows: int
    problem: str | None = None  # "edited", "inserted", "removed"
    row_id: int | None = None
    head: str = GENESIS
    unsealed: int = 0  # rows written but not chained yet (PostgreSQL: committed while verify walked)

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(session: Session, config: Any = None, *, user: str | None = None, batch: int = 5000,
           seal_first: bool = True) -> Verdict:
    """Walk the chain in id order; the first row that does not fit says what happened to it.

    PostgreSQL: first seals the rows waiting to be chained (``seal_first``, waiting for the chain's
    lock), so the head covers every row committed before; rows committed meanwhile are counted in
    ``unsealed``.

    * edited: the row's content no longer gives its hash, and the chain goes on from it;
    * inserted: the row does not continue the chain, and the row after it continues the one before;
    * removed: the row continues a row that is no longer there (the rows before it were deleted).
    """
    if config is not None:
        from core import access

        access.require(config, user, access.AUDIT_READ)
    pg = session.get_bind().dialect.name == "postgresql"
    if pg and seal_first:
        session.execute(text(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})"))
        seal(session)
    verdict = _walk(session, batch)
    if pg:
        verdict.unsealed = unsealed(session)
    return verdict


def _walk(session: Session, batch: int) -> Verdict:
    prev, count, last_id = GENESIS, 0, 0
    window: list[AuditEntry] = []
    while True:
        window = list(session.execute(
            select(AuditEntry).where(AuditEntry.id > last_id).order_by(AuditEntry.id).limit(batch + 1)
        ).scalars())
        if not window:
            return Verdict(rows=count, head=prev)
        for i, row in enumerate(window[:batch]):
            following = window[i + 1] if i + 1 < len(window) else None
            own = row_hash(row.prev_hash or "", row) == row.hash
            skipped = following is not None and following.prev_hash == prev  # the chain goes on without it
            if row.prev_hash != prev or not own:
                if skipped:
                    problem = "inserted"
                elif row.prev_hash != prev and own:
                    problem = "removed"
                elif row.prev_hash == prev or (following is not None and following.prev_hash == row.hash):
                    problem = "edited"
                else:
                    problem = "inserted"
                return Verdict(rows=count, problem=problem, row_id=row.id, head=prev)
            prev, count, last_id = row.hash, count + 1, row.id
        if len(window) <= batch:
            return Verdict(rows=count, head=prev)


def chain_existing(connection: Any, table: Any) -> None:
    """Chain rows written before the chain existed (migration 0013, ``table`` as it has them), in id order."""
    prev = GENESIS
    rows = connection.execute(select(table).order_by(table.c.id)).all()
    for row in rows:
        values = dict(row._mapping)
        values["recorded_at"] = values["recorded_at"] or values["at"]
        digest = row_hash(prev, SimpleNamespace(**values))
        connection.execute(table.update().where(table.c.id == values["id"]).values(
            recorded_at=values["recorded_at"], prev_hash=prev, hash=digest))
        prev = digest


def list_audit(session: Session, config: Any, *, user: str | None, patient: str | None = None,
               limit: int = 200) -> list[dict[str, Any]]:
    """The newest audit rows ``user`` may read (a manager: about patients of their sites), in clinic time.

    Free text in a row's detail (a do-not-contact reason) is masked (core/privacy.py).
    """
    from core import access
    from core.db.models import Patient, Task
    from core.errors import FollowupError
    from core.privacy import mask_data

    who = access.require(config, user, access.AUDIT_READ)
    query = select(AuditEntry).order_by(AuditEntry.at.desc(), *(o.desc() for o in written_order())).limit(limit)
    if patient:
        found = session.execute(select(Patient).where(Patient.external_id == patient)).scalar_one_or_none()
        if found is None:
            raise FollowupError(key="no_patient", values={"patient": patient})
        access.require_patient(session, config, user, access.AUDIT_READ, found)
        query = query.where(AuditEntry.patient_id == found.id)
    elif who is not None and not who.all_sites:
        sites = list(who.staff.sites)
        theirs = select(Patient.id).where(Patient.site.in_(sites)).union(
            select(Task.patient_id).where(Task.site.in_(sites)))
        query = query.where(AuditEntry.patient_id.in_(theirs))
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(config.model.defaults.timezone)  # shown in clinic time, stored in UTC

    def local(moment: datetime | None) -> str | None:
        return moment.astimezone(tz).isoformat(timespec="seconds") if moment is not None else None

    return [{"at": local(e.at), "recorded_at": local(e.recorded_at), "user": e.user, "action": e.action,
             "entity": e.entity, "entity_id": e.entity_id, "detail": mask_data(e.detail)}
            for e in session.execute(query).scalars()]


def audit_many(session: Session, rows: list[dict[str, Any]]) -> None:
    """Several audit rows (keys as :func:`audit`'s arguments), chained and written together at commit."""
    for row in rows:
        audit(session, **row)
