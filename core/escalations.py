"""Escalations as a closed loop (DOMAIN.md §6, seeds 002 and 003; issue 14 item 13).

An abnormal finding goes to the attending doctor, who calls the patient back.
Each escalation has:

* a **severity**: ``clinical`` (a red flag) or ``routine`` (the doctor must arrange
  a visit, e.g. an uneven bite);
* an **assignee**: the attending doctor when they are on staff (a ``doctor`` whose
  name or username is the episode's doctor), else the site's ``on_call_doctor``;
* a **deadline**: ``escalation_hours`` working hours after it was opened (chain
  default 4 for clinical, 16 for routine), counted in the chain's ``working_hours``
  (default 08:00–18:00); a clinical escalation counts every day, a routine one only
  the site's working days;
* a life: ``open`` → ``acknowledged`` (the assignee has seen it) → ``resolved`` (how,
  in words); still not resolved after its deadline it is **overdue**, highlighted
  in lists and counted in reports.

Escalations are opened by the rules of a reached call (``followup record``) or by
the coordinator's own judgement (``followup escalations open TASK_ID --reason``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import audit
from core.config import ChainConfig, Site
from core.db.models import Episode, Escalation, Patient, Task
from core.errors import FollowupError, checked_text
from core.tasklist import local_iso
from core.vocab import Urgency

SEVERITIES = tuple(Urgency)  # an escalation is as urgent as the call that raised it
STATUSES = ("open", "acknowledged", "resolved")
# ``escalations list --format json``: exactly these keys (issue 14 item 13).
JSON_KEYS = ("id", "task_id", "patient_id", "site", "reason", "severity", "assignee", "status", "opened_at",
             "due_at", "acknowledged_at", "resolved_at")


class EscalationError(FollowupError):
    """An escalation cannot be opened or changed as asked; nothing was stored."""


def working_deadline(start: datetime, hours: float, site: Site, calendar: Any, *, every_day: bool) -> datetime:
    """``hours`` working hours after ``start``: only the working hours of a (working) day count.

    Opened at 16:00 with 4 hours and working hours 08:00–18:00: due 10:00 the next
    (working) day. ``every_day`` counts every calendar day (clinical: a holiday does
    not hold back a red flag).
    """
    tz = site.timezone
    local = start.astimezone(tz)
    remaining = timedelta(hours=hours)
    begin_t, end_t = site.working_hours.start, site.working_hours.end
    day = local.date()
    for _ in range(800):
        if every_day or calendar.is_working_day(day):
            day_start = datetime.combine(day, begin_t, tz)
            day_end = datetime.combine(day, end_t, tz)
            begin = max(day_start, local)
            if begin < day_end:
                if remaining <= day_end - begin:
                    return begin + remaining
                remaining -= day_end - begin
        day += timedelta(days=1)
    return local + remaining  # pragma: no cover - no working day in 800 days


def assignee_for(config: ChainConfig, site: Site, doctor: str | None) -> str | None:
    """The attending doctor's username when they are on staff at this site, else the site's on-call doctor."""
    if doctor:
        wanted = doctor.strip()
        for member in config.model.staff:
            if member.role != "doctor" or (member.sites and site.code not in member.sites):
                continue
            if wanted in (member.username, member.name):
                return member.username
    return site.on_call_doctor


def open_escalation(
    session: Session, config: ChainConfig, task: Task, *, reason: str, severity: str, user: str, now: datetime,
    source: str = "rule",
) -> Escalation:
    """Open one escalation on a task: assignee and deadline from the configuration; audited."""
    if severity not in SEVERITIES:
        raise EscalationError(key="unknown_severity", values={"severity": severity, "choices": ", ".join(SEVERITIES)})
    if not reason.strip():
        raise EscalationError(key="escalation_needs_reason")
    site = config.site(task.site)
    episode = session.get(Episode, task.episode_id)
    doctor = episode.doctor if episode is not None else None
    hours = getattr(site.escalation_hours, severity)
    row = Escalation(
        task_id=task.id, patient_id=task.patient_id, site=task.site, doctor=doctor, reason=reason.strip(),
        opened_at=now, status="open", severity=severity, assignee=assignee_for(config, site, doctor),
        due_at=working_deadline(now, hours, site, site.calendar(config), every_day=severity == Urgency.CLINICAL),
        opened_by=user,
    )
    session.add(row)
    session.flush()
    audit(session, user=user, at=now, action="escalation:open", entity="escalation", entity_id=row.id,
          patient_id=row.patient_id, detail={"task_id": task.id, "severity": severity, "source": source,
                                             "assigned_to": row.assignee})
    return row


def is_overdue(row: Escalation, now: datetime) -> bool:
    return row.status != "resolved" and row.due_at is not None and row.due_at < now


def patient_phone_for(session: Session, config: ChainConfig, user: str, row: Escalation, phone: str | None,
                      now: datetime) -> str:
    """The patient's number as ``user`` may see it on an escalation: the one place that decides.

    The assignee calls the patient back (seed 003), so they see the full number, and the
    audit records it (core.privacy.reveal); everyone else sees it masked.
    """
    from core.privacy import mask_phone, reveal

    if not phone:
        return "—"
    if row.assignee is not None and row.assignee == user:
        return reveal(session, phone=phone, user=user, at=now, patient_id=row.patient_id, why="escalation",
                      entity="escalation", entity_id=row.id) or "—"
    return mask_phone(phone)


def list_escalations(
    session: Session, config: ChainConfig, *, now: datetime, status: str | None = None, site: str | None = None,
    assignee: str | None = None, user: str | None = None,
) -> list[dict[str, Any]]:
    """Escalations of the sites ``user`` may read (a doctor: those assigned to them, or not yet assigned at
    their sites), oldest first; each row has the JSON keys plus ``overdue``, ``patient_name`` and ``phone``."""
    from core import access

    sites = access.sites_for(config, user, access.ESCALATIONS_READ, site)
    who = access.actor(config, user) if user is not None else None
    query = (select(Escalation, Patient.external_id, Patient.name, Patient.phone)
             .join(Patient, Patient.id == Escalation.patient_id).order_by(Escalation.opened_at, Escalation.id))
    if status:
        query = query.where(Escalation.status == status)
    if site or len(sites) < len(config.sites):
        query = query.where(Escalation.site.in_(sites))
    if assignee:
        query = query.where(Escalation.assignee == assignee)
    out = []
    for e, patient, name, phone in session.execute(query):
        if who is not None and who.role == "doctor" and not access.assigned_to(e, who):
            continue
        tz = config.timezone_of(e.site)
        out.append({
            "id": e.id, "task_id": e.task_id, "patient_id": patient, "site": e.site, "reason": e.reason,
            "severity": e.severity, "assignee": e.assignee, "status": e.status,
            "opened_at": local_iso(e.opened_at, tz), "due_at": local_iso(e.due_at, tz),
            "acknowledged_at": local_iso(e.acknowledged_at, tz), "resolved_at": local_iso(e.resolved_at, tz),
            "overdue": is_overdue(e, now), "doctor": e.doctor, "resolved_by": e.resolved_by,
            "resolution": e.resolution, "patient_name": name,
            "phone": patient_phone_for(session, config, user or "", e, phone, now),
        })
    return out


def _escalation(session: Session, escalation_id: int) -> Escalation:
    row = session.get(Escalation, escalation_id)
    if row is None:
        raise EscalationError(key="no_escalation", values={"id": escalation_id})
    return row


def _check_assignee(config: ChainConfig, row: Escalation, user: str) -> None:
    """Only the assignee acknowledges and resolves (an admin may stand in); an unassigned one is taken.

    First core/access.py: a doctor (or an admin) of the escalation's site, nobody else."""
    from core import access

    try:
        access.require(config, user, access.ESCALATIONS_RESOLVE, row.site)
    except access.AccessDenied as exc:
        raise access.AccessDenied(key="escalation_denied", values={"id": row.id, "error": exc}) from None
    staff = config.staff(user)
    if row.assignee is None:
        if staff is not None and staff.role == "coordinator":
            raise EscalationError(key="escalation_unassigned", values={"id": row.id})
        row.assignee = user
        return
    if row.assignee != user and not (staff is not None and staff.role == "admin"):
        raise EscalationError(key="escalation_not_yours", values={"id": row.id, "assignee": row.assignee,
                                                                   "user": user})


def acknowledge_escalation(session: Session, config: ChainConfig, escalation_id: int, *, user: str,
                           now: datetime) -> Escalation:
    row = _escalation(session, escalation_id)
    if row.status == "resolved":
        raise EscalationError(key="escalation_already_resolved", values={"id": escalation_id, "user": row.resolved_by})
    if row.status == "acknowledged":
        raise EscalationError(key="escalation_already_acknowledged", values={"id": escalation_id})
    _check_assignee(config, row, user)
    row.status, row.acknowledged_at = "acknowledged", now
    audit(session, user=user, at=now, action="escalation:ack", entity="escalation", entity_id=row.id,
          patient_id=row.patient_id, detail={"overdue": is_overdue(row, now)})
    return row


def resolve_escalation(session: Session, config: ChainConfig, escalation_id: int, *, resolution: str, user: str,
                       now: datetime) -> Escalation:
    row = _escalation(session, escalation_id)
    if row.status == "resolved":
        raise EscalationError(key="escalation_already_resolved", values={"id": escalation_id, "user": row.resolved_by})
    _check_assignee(config, row, user)
    checked_text("--how", resolution)
    if not resolution.strip():
        raise EscalationError(key="resolution_needs_text")
    late = row.due_at is not None and row.due_at < now
    row.status, row.resolved_at, row.resolved_by, row.resolution = "resolved", now, user, resolution.strip()
    row.acknowledged_at = row.acknowledged_at or now
    audit(session, user=user, at=now, action="escalation:resolve", entity="escalation", entity_id=row.id,
          patient_id=row.patient_id, detail={"late": late})
    return row
