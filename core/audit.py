"""The audit log: every change and every release of contact details, with user and time (never names or phones).

Tamper-evident: each row carries ``hash = sha256(prev_hash + its content)``, where
``prev_hash`` is the hash of the row before it (ids ascending). Rows are chained
when their transaction commits, under one lock (PostgreSQL: an advisory lock held
until commit; SQLite: its single writer), so ids and the chain have one order even
with many writers. :func:`verify` walks the chain and names the first row that was
edited, inserted or removed out of order (docs/security.md says what it cannot see).

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

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from core.db.models import AuditEntry

GENESIS = "0" * 64
AUDIT_LOCK = 7204  # pg_advisory_xact_lock(AUDIT_LOCK, 0): one transaction chains its audit rows at a time
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


def _chain_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:ns, 0)"), {"ns": AUDIT_LOCK})
    prev = session.execute(
        select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)
    ).scalar_one_or_none() or GENESIS
    for values in pending:
        entry = AuditEntry(**values, prev_hash=prev)
        session.add(entry)
        session.flush()  # its id is part of what is hashed
        entry.hash = prev = row_hash(prev, entry)
    session.flush()


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    _chain_pending(session)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


@dataclass
class Verdict:
    rows: int
    problem: str | None = None  # "edited", "inserted", "removed"
    row_id: int | None = None
    head: str = GENESIS

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(session: Session, config: Any = None, *, user: str | None = None, batch: int = 5000) -> Verdict:
    """Walk the chain in id order; the first row that does not fit says what happened to it.

    * edited: the row's content no longer gives its hash, and the chain goes on from it;
    * inserted: the row does not continue the chain, and the row after it continues the one before;
    * removed: the row continues a row that is no longer there (the rows before it were deleted).
    """
    if config is not None:
        from core import access

        access.require(config, user, access.AUDIT_READ)
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
    query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
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
