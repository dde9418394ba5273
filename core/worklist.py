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

from sqlalchemy import ARRAY, Integer, any_, bindparam, case, func, select
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


def _statement(mine: bool, joined: bool) -> Any:
    """The day's due tasks of one site, with bound parameters, built once per shape.

    Only what a line shows, not Task objects (a busy site's day is a few thousand
    rows, and ORM objects cost five times the query); overdue, the current holder
    and the line's time are computed by the database, so one instant per row is
    parsed instead of four. The index (site, status, next_attempt_at) reads exactly
    these rows, in this order.

    ``joined``: with the patient's columns, joined (SQLite, whose planner loops over
    the few due tasks). Otherwise the patients come in a second query, by id:
    joined in one query, PostgreSQL expects thousands of due tasks (it cannot know
    that open tasks are mostly future ones) and hashes the whole patients table,
    80 ms at a million tasks instead of 2 ms for both queries.
    """
    now, cutoff = bindparam("now", type_=UTCDateTime), bindparam("cutoff", type_=UTCDateTime)
    query = (
        select(
            Task.id, Task.patient_id, Task.urgency, (Task.window_end < now).label("overdue"),
            func.coalesce(Task.next_attempt_at, Task.due_at).label("due"),
            case((Task.claimed_until >= now, Task.assignee), else_=None).label("held_by"),
            Task.milestone, Task.procedure, Task.attempts,
        )
        .where(
            Task.site == bindparam("site"),
            Task.status == "open",
            Task.window_start < cutoff,
            Task.next_attempt_at < cutoff,
        )
        .order_by(Task.next_attempt_at, Task.id)
    )
    if joined:
        query = query.add_columns(
            Patient.external_id, Patient.name, Patient.phone, Patient.phone_invalid
        ).join(Patient, Patient.id == Task.patient_id).where(Patient.do_not_contact.is_(False))
    if mine:  # what that coordinator holds now (an expired hold is back in the pool)
        query = query.where(Task.assignee == bindparam("assignee"), Task.claimed_until >= now)
    return query


def _patients(array: bool) -> Any:
    """The callable patients among ``ids``: ``= ANY(array)`` on PostgreSQL (one parameter), else ``IN``."""
    ids = (
        Patient.id == any_(bindparam("ids", type_=ARRAY(Integer))) if array
        else Patient.id.in_(bindparam("ids", expanding=True))
    )
    return select(Patient.id, Patient.external_id, Patient.name, Patient.phone, Patient.phone_invalid).where(
        ids, Patient.do_not_contact.is_(False)
    )


_TASKS = {(mine, joined): _statement(mine, joined) for mine in (False, True) for joined in (False, True)}
_PATIENTS = {array: _patients(array) for array in (False, True)}


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
    dialect = session.get_bind().dialect.name
    joined = dialect == "sqlite"
    query = _TASKS[assignee is not None, joined]
    for code in sites or list(config.sites):
        site = config.site(code)
        params = {"site": code, "now": now, "cutoff": end_of_day(day, site.timezone), "assignee": assignee}
        tasks = _rows(session, query, params).all()
        if not tasks:
            continue
        if joined:
            patients = {task[1]: task[9:] for task in tasks}
        else:
            patients = {
                row[0]: row[1:]
                for row in _rows(session, _PATIENTS[dialect == "postgresql"],
                                 {"ids": list({task[1] for task in tasks})})
            }
        by_patient: dict[str, WorklistLine] = {}
        for task_id, patient_id, urgency, overdue, due, held_by, milestone, procedure, attempts, *_ in tasks:
            patient = patients.get(patient_id)
            if patient is None:  # do not contact
                continue
            ext_id, name, phone, phone_invalid = patient
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
