"""A site's (or coordinator's) list of calls for one day.

Open tasks whose window has opened and whose next attempt is due by the end of
that day, in the site's timezone. Ordered clinical first, then overdue (past the
window's end), then by due time. Tasks of one patient on the same day are one
line: one call covers them, so nobody is called twice a day for routine reasons.
Do-not-contact patients never appear.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.orm import Session

from core.config import ChainConfig
from core.db.models import Patient, Task, UTCDateTime
from core.privacy import mask_phone


@dataclass
class WorklistLine:
    """One call: a patient and every task that call covers."""

    site: str
    patient_id: str
    patient_name: str
    phone: str
    urgency: str
    overdue: bool
    due_at: datetime
    task_ids: list[int] = field(default_factory=list)
    milestones: list[str] = field(default_factory=list)
    procedures: list[str] = field(default_factory=list)
    attempts: int = 0
    assignee: str | None = None
    phone_invalid: bool = False

    def as_dict(self, tz: Any) -> dict[str, Any]:
        return {
            "site": self.site,
            "patient_id": self.patient_id,
            "patient_name": self.patient_name,
            "phone": self.phone,
            "urgency": self.urgency,
            "overdue": self.overdue,
            "due_at": self.due_at.astimezone(tz).isoformat(timespec="minutes"),
            "task_ids": self.task_ids,
            "milestones": self.milestones,
            "procedures": self.procedures,
            "attempts": self.attempts,
            "assignee": self.assignee,
            "phone_invalid": self.phone_invalid,
        }


def end_of_day(day: date, tz: Any) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tz)


def _statement(mine: bool) -> Any:
    """The worklist query with bound parameters, built once per shape (and cached compiled by SQLAlchemy).

    Only what a line shows, not Task objects (a busy site's day is a few thousand
    rows, and ORM objects cost five times the query); overdue, the current holder
    and the line's time are computed by the database, so one instant per row is
    parsed instead of four. Every task has its episode (foreign key): no join to
    episodes. The index (site, status, next_attempt_at) reads exactly these rows,
    in this order.
    """
    now, cutoff = bindparam("now", type_=UTCDateTime), bindparam("cutoff", type_=UTCDateTime)
    query = (
        select(
            Task.id, Task.urgency, (Task.window_end < now).label("overdue"),
            func.coalesce(Task.next_attempt_at, Task.due_at).label("due"),
            case((Task.claimed_until >= now, Task.assignee), else_=None).label("held_by"),
            Task.milestone, Task.procedure, Task.attempts,
            Patient.external_id, Patient.name, Patient.phone, Patient.phone_invalid,
        )
        .join(Patient, Patient.id == Task.patient_id)
        .where(
            Task.site == bindparam("site"),
            Task.status == "open",
            Task.window_start < cutoff,
            Task.next_attempt_at < cutoff,
            Patient.do_not_contact.is_(False),
        )
        .order_by(Task.next_attempt_at, Task.id)
    )
    if mine:  # what that coordinator holds now (an expired hold is back in the pool)
        query = query.where(Task.assignee == bindparam("assignee"), Task.claimed_until >= now)
    return query


_STATEMENTS = {mine: _statement(mine) for mine in (False, True)}


def worklist(
    session: Session,
    config: ChainConfig,
    *,
    day: date,
    now: datetime,
    sites: list[str] | None = None,
    assignee: str | None = None,
) -> list[WorklistLine]:
    """The day's calls for ``sites`` (default: all), one line per patient."""
    lines: list[WorklistLine] = []
    query = _STATEMENTS[assignee is not None]
    for code in sites or list(config.sites):
        site = config.site(code)
        params = {"site": code, "now": now, "cutoff": end_of_day(day, site.timezone), "assignee": assignee}
        by_patient: dict[str, WorklistLine] = {}
        for (task_id, urgency, overdue, due, held_by, milestone, procedure, attempts,
             ext_id, name, phone, phone_invalid) in _rows(session, query, params):
            overdue = bool(overdue)
            line = by_patient.get(ext_id)
            if line is None:
                line = by_patient[ext_id] = WorklistLine(
                    site=code, patient_id=ext_id, patient_name=name, phone=mask_phone(phone),
                    urgency=urgency, overdue=overdue, due_at=due,
                    assignee=held_by, phone_invalid=bool(phone_invalid),
                )
            line.assignee = line.assignee or held_by
            line.task_ids.append(task_id)
            line.milestones.append(milestone)
            if procedure not in line.procedures:
                line.procedures.append(procedure)
            line.attempts = max(line.attempts, attempts)
            if urgency == "clinical":
                line.urgency = "clinical"
            line.overdue = line.overdue or overdue
        lines.extend(by_patient.values())
    lines.sort(key=lambda ln: (ln.urgency != "clinical", not ln.overdue, ln.due_at, ln.patient_id))
    return lines


def _rows(session: Session, query: Any, params: dict[str, Any]) -> Any:
    """Core execution on the session's connection: plain rows need none of the ORM's machinery.

    Pending changes are flushed first, as ``session.execute`` would with autoflush.
    """
    if session.autoflush:
        session.flush()
    return session.connection().execute(query, params)
