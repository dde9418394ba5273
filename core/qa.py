"""Call quality: the weekly spot check of recorded calls (seed 002 每周对回访录音进行抽查).

``sample`` picks, per coordinator, up to N of the connected calls of an ISO week at random
with a seed made from the week, so the same week gives the same pick on every run and
every machine (a supervisor and an auditor see one list). ``score`` stores a supervisor's
0–100 score and note on one call; reports show the average score and the number of calls
reviewed per coordinator (core/reports/followups.py).
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import audit
from core.calls import CallError
from core.config import ChainConfig
from core.db.models import Attempt, Patient, QaReview, Task
from core.tasklist import local_iso

CONNECTED = ("reached", "booked", "refused", "callback_requested")  # a conversation took place: worth a review
REVIEWERS = ("manager", "admin")  # core/access.py: QA_REVIEW
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


@dataclass(frozen=True)
class Week:
    label: str
    start: datetime  # Monday 00:00 in the chain's timezone
    end: datetime

    @classmethod
    def parse(cls, text: str, tz: ZoneInfo) -> Week:
        match = _WEEK.match(text.strip())
        try:
            if not match:
                raise ValueError
            monday = date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
        except ValueError:
            raise CallError(key="qa_bad_week", values={"text": text}) from None
        start = datetime.combine(monday, time(), tz)
        return cls(text.strip(), start, datetime.combine(monday + timedelta(days=7), time(), tz))


def _seed(week: str) -> int:
    return int.from_bytes(hashlib.sha256(f"followup-qa:{week}".encode()).digest()[:8], "big")


def sample(
    session: Session, config: ChainConfig, week: Week, per_coordinator: int, sites: list[str]
) -> list[dict[str, Any]]:
    """Up to ``per_coordinator`` connected calls of the week per coordinator, the same pick every time."""
    rows = session.execute(
        select(Attempt.id, Attempt.by, Attempt.at, Attempt.site, Attempt.outcome, Attempt.task_id,
               Attempt.recording, Task.milestone, Patient.external_id, QaReview.score)
        .join(Task, Task.id == Attempt.task_id)
        .join(Patient, Patient.id == Task.patient_id)
        .outerjoin(QaReview, QaReview.attempt_id == Attempt.id)
        .where(Attempt.at >= week.start, Attempt.at < week.end, Attempt.outcome.in_(CONNECTED),
               Attempt.site.in_(sites))
        .order_by(Attempt.by, Attempt.id)
    ).all()
    by_coordinator: dict[str, list[Any]] = {}
    for row in rows:
        by_coordinator.setdefault(row.by, []).append(row)
    picked: list[Any] = []
    for coordinator in sorted(by_coordinator):
        calls = by_coordinator[coordinator]
        chooser = random.Random(_seed(f"{week.label}:{coordinator}"))
        picked.extend(sorted(chooser.sample(calls, min(per_coordinator, len(calls))), key=lambda r: r.id))
    return [
        {"attempt_id": r.id, "coordinator": r.by, "site": r.site, "at": local_iso(r.at, config.timezone_of(r.site)),
         "task_id": r.task_id, "patient_id": r.external_id, "milestone": r.milestone, "outcome": r.outcome,
         "recording": r.recording, "score": r.score}
        for r in picked
    ]


def score(session: Session, config: ChainConfig, attempt_id: int, value: int, note: str | None, user: str,
          now: datetime) -> QaReview:
    """A supervisor's score of one connected call (scoring again replaces the score; both are audited)."""
    from core import access

    staff = config.staff(user)
    if config.model.staff and (staff is None or staff.role not in REVIEWERS):
        raise CallError(key="qa_supervisors_only", values={"user": user})
    attempt = session.get(Attempt, attempt_id) if 0 < attempt_id < 2**63 else None
    if attempt is None:
        raise CallError(key="qa_no_attempt", values={"id": attempt_id})
    access.require(config, user, access.QA_REVIEW, attempt.site)
    if attempt.outcome not in CONNECTED:
        raise CallError(key="qa_not_connected", values={"id": attempt_id, "outcome": attempt.outcome})
    if attempt.by == user:
        raise CallError(key="qa_own_call", values={"id": attempt_id})
    review = session.execute(select(QaReview).where(QaReview.attempt_id == attempt_id)).scalar_one_or_none()
    before = review.score if review else None
    if review is None:
        review = QaReview(attempt_id=attempt_id, score=value, note=note, by=user, at=now)
        session.add(review)
    else:
        review.score, review.note, review.by, review.at = value, note, user, now
    task = session.get(Task, attempt.task_id)
    audit(session, user=user, at=now, action="qa_score", entity="attempt", entity_id=attempt_id,
          patient_id=task.patient_id if task else None, detail={"score": value, "before": before})
    session.flush()
    return review
