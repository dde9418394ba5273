"""The audit log: every change a coordinator makes, with user and time (never names or phones)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from core.db.models import AuditEntry


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
    session.add(AuditEntry(at=at, user=user, action=action, entity=entity, entity_id=entity_id,
                           patient_id=patient_id, detail=detail or {}))


def audit_many(session: Session, rows: list[dict[str, Any]]) -> None:
    """Several audit rows (keys as :func:`audit`'s arguments) in one INSERT: a claim of many tasks."""
    if rows:  # one statement for all (executemany: psycopg sends them in one pipeline), compiled once
        session.connection().execute(insert(AuditEntry.__table__), [
            {"entity_id": None, "patient_id": None, **row, "detail": row.get("detail") or {}} for row in rows
        ])
