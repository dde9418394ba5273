"""After the call: complaints (answered within 3 days) and do-not-contact; escalations are in core/escalations.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import access
from core.audit import audit
from core.config import ChainConfig
from core.db.models import Complaint, Patient, Task
from core.db.uow import unit_of_work
from core.errors import FollowupError, checked_text
from core.tasklist import local_iso
from core.vocab import TaskStatus


class NotFound(FollowupError):
    pass


def list_complaints(session: Session, config: ChainConfig, *, now: datetime, status: str | None = None,
                    site: str | None = None, user: str | None = None) -> list[dict[str, Any]]:
    """Complaints of the sites ``user`` may read (--site narrows, and is checked)."""
    sites = access.sites_for(config, user, access.COMPLAINTS_READ, site)
    query = (select(Complaint, Patient.external_id).join(Patient, Patient.id == Complaint.patient_id)
             .order_by(Complaint.due_at))
    if status:
        query = query.where(Complaint.status == status)
    if site or len(sites) < len(config.sites):
        query = query.where(Complaint.site.in_(sites))
    out = []
    for c, patient in session.execute(query):
        tz = config.timezone_of(c.site)
        out.append({
            "id": c.id, "patient_id": patient, "site": c.site, "category": c.category,
            "categories": list(c.categories or [c.category]), "handler": c.handler_role, "staff": c.staff,
            "description": c.description, "status": c.status, "opened_at": local_iso(c.opened_at, tz),
            "due_at": local_iso(c.due_at, tz), "responded_at": local_iso(c.responded_at, tz), "response": c.response,
            "closed_at": local_iso(c.closed_at, tz),
            "overdue": c.responded_at is None and c.status != "closed" and c.due_at < now,
        })
    return out


def _complaint(session: Session, config: ChainConfig, complaint_id: int, user: str | None) -> Complaint:
    row = session.get(Complaint, complaint_id)
    if row is None:
        raise NotFound(key="no_complaint", values={"id": complaint_id})
    try:
        access.require(config, user, access.COMPLAINTS_ANSWER, row.site)
    except access.AccessDenied as exc:
        raise access.AccessDenied(key="complaint_denied", values={"id": complaint_id, "error": exc}) from None
    return row


def respond_complaint(session: Session, config: ChainConfig, complaint_id: int, *, response: str, user: str,
                      now: datetime) -> Complaint:
    row = _complaint(session, config, complaint_id, user)
    checked_text("--text", response)
    if row.status == "closed":
        raise FollowupError(key="complaint_is_closed", values={"id": complaint_id})
    if not response.strip():
        raise FollowupError(key="response_needs_text")
    row.response = response
    row.responded_at = row.responded_at or now
    row.status = "responded"
    audit(session, user=user, at=now, action="complaint:respond", entity="complaint", entity_id=row.id,
          patient_id=row.patient_id, detail={"on_time": now <= row.due_at})
    return row


def close_complaint(session: Session, config: ChainConfig, complaint_id: int, *, user: str, now: datetime,
                    note: str | None = None) -> Complaint:
    row = _complaint(session, config, complaint_id, user)
    checked_text("--note", note)
    if row.status == "closed":
        raise FollowupError(key="complaint_already_closed", values={"id": complaint_id})
    if row.responded_at is None:
        raise FollowupError(key="complaint_not_responded", values={"id": complaint_id})
    row.status = "closed"
    row.closed_at = now
    audit(session, user=user, at=now, action="complaint:close", entity="complaint", entity_id=row.id,
          patient_id=row.patient_id, detail={"note": bool(note)})
    return row


def set_do_not_contact(session: Session, config: ChainConfig, external_id: str, *, on: bool, reason: str | None,
                       user: str, now: datetime) -> int:
    """Suppress (or restore) every open task of a patient at once; returns how many tasks changed."""
    access.require(config, user, access.DNC)
    checked_text("--reason", reason)
    patient = session.execute(select(Patient).where(Patient.external_id == external_id)).scalar_one_or_none()
    if patient is None:
        raise NotFound(key="no_patient", values={"patient": external_id})
    access.require_patient(session, config, user, access.DNC, patient)
    if patient.do_not_contact == on:
        raise FollowupError(key="dnc_already" if on else "dnc_not_set", values={"patient": external_id})
    patient.do_not_contact = on
    patient.dnc_reason = reason if on else None
    session.flush()
    with unit_of_work(session, None, user=user, now=now, action="dnc") as uow:  # the sites: once they are known
        changed = apply_do_not_contact(session, [patient.id], on=on, now=now, user=user)
        uow.audit("dnc:on" if on else "dnc:off", entity="patient", entity_id=patient.id, patient_id=patient.id,
                  detail={"tasks": changed, "reason": reason})
    return changed


def apply_do_not_contact(session: Session, patient_ids: list[int], *, on: bool, now: datetime,
                         user: str = "system") -> int:
    """What do-not-contact means for tasks, whoever set or lifted it (``patients dnc``, an import, an answer).

    Set: every open task becomes ``suppressed`` (and is released if someone held it).
    Lifted: the suppressed tasks whose window has not closed become ``open`` again; the
    others stay suppressed (their moment has passed). Returns how many tasks changed.
    """
    if not patient_ids:
        return 0
    old, new = (TaskStatus.OPEN, TaskStatus.SUPPRESSED) if on else (TaskStatus.SUPPRESSED, TaskStatus.OPEN)
    which = [Task.patient_id.in_(patient_ids), Task.status == old]
    if not on:
        which.append(Task.window_end >= now)
    sites = session.scalars(select(Task.site).where(*which).distinct()).all()
    if not sites:
        return 0
    # in one unit of work: the sites' turns (the reports' day counts), the access check
    with unit_of_work(session, None, sites=sites, user=user, now=now, action="dnc"):
        result = session.execute(
            update(Task).where(*which)
            .values(status=new, claimed_until=None, updated_at=now).execution_options(synchronize_session=False)
        )
    return result.rowcount or 0
