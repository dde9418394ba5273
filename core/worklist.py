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

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.config import ChainConfig
from core.db.models import Episode, Patient, Task
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
    for code in sites or list(config.sites):
        site = config.site(code)
        tz = site.timezone
        cutoff = end_of_day(day, tz)
        query = (
            select(Task, Patient.external_id, Patient.name, Patient.phone, Patient.phone_invalid)
            .join(Patient, Patient.id == Task.patient_id)
            .join(Episode, Episode.id == Task.episode_id)
            .where(
                Task.site == code,
                Task.status == "open",
                Task.window_start < cutoff,
                Task.next_attempt_at < cutoff,
                Patient.do_not_contact.is_(False),
            )
            .order_by(Task.next_attempt_at, Task.id)
        )
        if assignee is not None:  # what that coordinator holds now (an expired hold is back in the pool)
            query = query.where(Task.assignee == assignee, Task.claimed_until >= now)
        by_patient: dict[str, WorklistLine] = {}
        for task, ext_id, name, phone, phone_invalid in session.execute(query):
            overdue = task.window_end < now
            held_by = task.assignee if task.claimed_until is not None and task.claimed_until >= now else None
            line = by_patient.get(ext_id)
            if line is None:
                line = by_patient[ext_id] = WorklistLine(
                    site=code, patient_id=ext_id, patient_name=name, phone=mask_phone(phone),
                    urgency=task.urgency, overdue=overdue, due_at=task.next_attempt_at or task.due_at,
                    assignee=held_by, phone_invalid=bool(phone_invalid),
                )
            line.assignee = line.assignee or held_by
            line.task_ids.append(task.id)
            line.milestones.append(task.milestone)
            if task.procedure not in line.procedures:
                line.procedures.append(task.procedure)
            line.attempts = max(line.attempts, task.attempts)
            if task.urgency == "clinical":
                line.urgency = "clinical"
            line.overdue = line.overdue or overdue
        lines.extend(by_patient.values())
    lines.sort(key=lambda ln: (ln.urgency != "clinical", not ln.overdue, ln.due_at, ln.patient_id))
    return lines
