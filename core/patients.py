"""A patient's rights under PIPL: a copy of everything held (export), and erasure (anonymisation).

Both are admin actions (core/access.py) and both are audited. An export is the one
output that does not pass the masking layer: it is the patient's own data, released
on purpose, and the audit says who released it. Erasure removes what identifies the
patient or was said by them (name, phone, birth date, notes, free-text answers,
complaint texts, the episode's clinical details) and keeps every row and every count,
so reports of past periods do not change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import access
from core.audit import audit, written_order
from core.config import ChainConfig
from core.db.models import Answer, Attempt, AuditEntry, Complaint, Episode, Escalation, Patient, Task
from core.db.uow import unit_of_work
from core.errors import FollowupError, checked_text
from core.vocab import TaskStatus

ERASED = "[erased]"


def _patient(session: Session, config: ChainConfig, user: str | None, action: str, external_id: str) -> Patient:
    access.require(config, user, action)
    patient = session.execute(select(Patient).where(Patient.external_id == external_id)).scalar_one_or_none()
    if patient is None:
        raise FollowupError(key="no_patient", values={"patient": external_id})
    access.require_patient(session, config, user, action, patient)
    return patient


def _row(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {c.key: getattr(obj, c.key) for c in obj.__table__.columns if c.key not in skip}


def export_patient(session: Session, config: ChainConfig, external_id: str, *, user: str | None,
                   now: datetime) -> dict[str, Any]:
    """Everything held about one patient, as plain data (instants in UTC); audited."""
    patient = _patient(session, config, user, access.PATIENTS_EXPORT, external_id)
    pid = patient.id
    tasks = list(session.execute(select(Task).where(Task.patient_id == pid).order_by(Task.id)).scalars())
    task_ids = [t.id for t in tasks]
    data = {
        "patient": _row(patient),
        "episodes": [_row(e) for e in session.execute(
            select(Episode).where(Episode.patient_id == pid).order_by(Episode.id)).scalars()],
        "tasks": [_row(t) for t in tasks],
        "attempts": [_row(a) for a in session.execute(
            select(Attempt).where(Attempt.task_id.in_(task_ids)).order_by(Attempt.id)).scalars()],
        "answers": [_row(a) for a in session.execute(
            select(Answer).where(Answer.task_id.in_(task_ids)).order_by(Answer.id)).scalars()],
        "complaints": [_row(c) for c in session.execute(
            select(Complaint).where(Complaint.patient_id == pid).order_by(Complaint.id)).scalars()],
        "escalations": [_row(e) for e in session.execute(
            select(Escalation).where(Escalation.patient_id == pid).order_by(Escalation.id)).scalars()],
        "audit": [_row(e, skip=("prev_hash", "hash")) for e in session.execute(
            select(AuditEntry).where(AuditEntry.patient_id == pid).order_by(*written_order())).scalars()],
    }
    audit(session, user=user or "system", at=now, action="patient:export", entity="patient", entity_id=pid,
          patient_id=pid, detail={"rows": sum(len(v) for k, v in data.items() if k != "patient") + 1})
    return data


def erase_patient(session: Session, config: ChainConfig, external_id: str, *, reason: str, user: str | None,
                  now: datetime) -> dict[str, int]:
    """Anonymise one patient; refused while an escalation or complaint of theirs is open. Returns what changed."""
    if not reason or not reason.strip():
        raise FollowupError(key="erase_needs_reason")
    checked_text("--reason", reason)
    patient = _patient(session, config, user, access.PATIENTS_ERASE, external_id)
    pid = patient.id
    open_items = [
        *(f"escalation {i}" for i in session.execute(select(Escalation.id).where(
            Escalation.patient_id == pid, Escalation.status != "resolved")).scalars()),
        *(f"complaint {i}" for i in session.execute(select(Complaint.id).where(
            Complaint.patient_id == pid, Complaint.status != "closed")).scalars()),
    ]
    if open_items:
        raise FollowupError(key="erase_open_items", values={"patient": external_id, "items": ", ".join(open_items)})
    task_ids = list(session.execute(select(Task.id).where(Task.patient_id == pid)).scalars())
    sites = list(session.execute(select(Task.site).where(Task.patient_id == pid).distinct()).scalars())
    with unit_of_work(session, config, sites=sites, user=user or "system", now=now):  # turns, day counts
        suppressed = session.execute(
            update(Task).where(Task.patient_id == pid, Task.status == TaskStatus.OPEN)
            .values(status=TaskStatus.SUPPRESSED, claimed_until=None, assignee=None, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount or 0
        session.execute(update(Attempt).where(Attempt.task_id.in_(task_ids), Attempt.note.is_not(None))
                        .values(note=ERASED))
        texts = _erase_answers(session, task_ids)
    patient.external_id = f"erased-{pid}"
    patient.name = ERASED
    patient.phone = None
    patient.birth_date = None
    patient.do_not_contact = True
    patient.dnc_reason = None
    session.execute(update(Episode).where(Episode.patient_id == pid).values(
        diagnosis=None, notes=None, attributes={}, department=None))
    session.execute(update(Complaint).where(Complaint.patient_id == pid).values(
        description=ERASED, response=ERASED))
    session.execute(update(Escalation).where(Escalation.patient_id == pid, Escalation.resolution.is_not(None))
                    .values(resolution=ERASED))
    audit(session, user=user or "system", at=now, action="patient:erase", entity="patient", entity_id=pid,
          patient_id=pid, detail={"reason": reason, "tasks_suppressed": suppressed, "text_answers": texts})
    return {"tasks_suppressed": suppressed, "text_answers": texts}


def _erase_answers(session: Session, task_ids: list[int]) -> int:
    """Free-text answers (what the patient said in their words) replaced; scores and choices stay."""
    from core.plugins import get_plugins

    texts = 0

    plugins = get_plugins()
    rows = session.execute(select(Answer, Task.specialty, Task.procedure, Task.milestone)
                           .join(Task, Task.id == Answer.task_id).where(Answer.task_id.in_(task_ids)))
    for answer, specialty, procedure, milestone in rows:
        question = plugins.questions(specialty, procedure, milestone).get(answer.question)
        free_text = question.type == "text" if question is not None else isinstance(answer.value, str)
        if free_text and answer.value:  # what the patient said in their words; scores and choices stay
            answer.value, texts = ERASED, texts + 1
    return texts
