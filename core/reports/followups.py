"""The report's figures of the follow-ups beyond a protocol's milestones (issue 15).

Interruption reasons, appointments booked from calls, referrals, the month-end sweep,
greetings and the weekly call-quality review. Each is one small query over the
period; definitions in core/reports/labels.py and docs/metrics.md.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, text
from sqlalchemy.orm import Session

from core.db import models
from core.db.models import LEAD_TRIGGERS
from core.reports.queries import INTERRUPTIONS_PREDICATE, REACHED, Scope
from core.vocab import TaskStatus

# tables, not mapped objects: Core statements (see core/reports/queries.py)
tasks, attempts, answers, patients = (m.__table__ for m in (models.Task, models.Attempt, models.Answer, models.Patient))
qa_reviews, referrals_table = models.QaReview.__table__, models.Referral.__table__  # referrals(): the figures

INTERRUPTION_REASONS = ("cost", "time", "fear", "result", "other")
GREETING = "greeting"
# The partial index ix_tasks_greetings's predicate, word for word (migration 0014), so that a generic plan
# (PostgreSQL) or a planner matching it textually can use it.
GREETINGS_PREDICATE = f"purpose = '{GREETING}'"


def followup_figures(session: Session, scope: Scope, start: datetime, end: datetime) -> dict[str, Any]:
    return {
        "interruptions": interruption_reasons(session, scope, start, end),
        "bookings": bookings(session, scope, start, end),
        "referrals": referrals(session, scope, start, end),
        "sweep": sweep(session, scope, start, end),
        "greetings": greetings(session, scope, start, end),
    }


def interruption_reasons(session: Session, scope: Scope, start: datetime, end: datetime) -> dict[str, Any]:
    """Why treatment was interrupted: the coded answers given on calls made in the period (from their
    partial index, ix_answers_interruptions: a few among all the answers)."""
    rows = session.execute(
        select(tasks.c.site, tasks.c.specialty, answers.c.value)
        .join(attempts, attempts.c.id == answers.c.attempt_id)
        .join(tasks, tasks.c.id == answers.c.task_id)
        .where(text(INTERRUPTIONS_PREDICATE), attempts.c.at >= start, attempts.c.at < end, *scope.task_filter())
    ).all()
    total = Counter(str(value) for _, _, value in rows)
    grouped = Counter((site, specialty, str(value)) for site, specialty, value in rows)
    return {
        "answered": len(rows),
        "by_reason": {reason: total.get(reason, 0) for reason in INTERRUPTION_REASONS},
        "by_site": [{"site": site, "specialty": specialty, "reason": reason, "n": n}
                    for (site, specialty, reason), n in sorted(grouped.items())],
    }


def bookings(session: Session, scope: Scope, start: datetime, end: datetime) -> dict[str, Any]:
    """Appointments made on calls of the period that invite patients back (sales leads are counted apart)."""
    rows = session.execute(
        select(tasks.c.site, tasks.c.specialty, func.count())
        .where(tasks.c.status == TaskStatus.BOOKED, tasks.c.completed_at >= start, tasks.c.completed_at < end,
               tasks.c.trigger.not_in(LEAD_TRIGGERS), *scope.task_filter())
        .group_by(tasks.c.site, tasks.c.specialty)
        .order_by(tasks.c.site, tasks.c.specialty)
    ).all()
    return {"reviews_booked": sum(n for *_, n in rows),
            "by_site": [{"site": site, "specialty": specialty, "n": n} for site, specialty, n in rows]}


def referrals(session: Session, scope: Scope, start: datetime, end: datetime) -> dict[str, Any]:
    """Invitations accepted on calls, and new patients imported with ``referred_by``, in the period."""
    r = referrals_table.c
    where = [r.at >= start, r.at < end, r.site.in_(scope.sites)]
    by_site = session.execute(select(r.site, r.kind, func.count()).where(*where).group_by(r.site, r.kind)).all()
    sites: dict[str, dict[str, Any]] = {}
    for site, kind, n in by_site:
        sites.setdefault(site, {"site": site, "accepted": 0, "referred": 0})[kind] = n
    by_referrer = session.execute(
        select(patients.c.external_id, patients.c.name, referrals_table.c.kind, func.count())
        .join(patients, patients.c.id == referrals_table.c.referrer_id)
        .where(*where)
        .group_by(patients.c.external_id, patients.c.name, referrals_table.c.kind)
    ).all()
    referrers: dict[str, dict[str, Any]] = {}
    for external_id, name, kind, n in by_referrer:
        referrers.setdefault(external_id, {"patient_id": external_id, "patient_name": name, "accepted": 0,
                                           "referred": 0})[kind] = n
    ordered = sorted(referrers.values(), key=lambda r: (-r["referred"], -r["accepted"], r["patient_id"]))
    return {
        "accepted": sum(r["accepted"] for r in sites.values()),
        "referred": sum(r["referred"] for r in sites.values()),
        "by_site": [sites[s] for s in sorted(sites)],
        "by_referrer": ordered,
    }


def sweep(session: Session, scope: Scope, start: datetime, end: datetime) -> dict[str, Any]:
    """The month-end sweep: follow-ups it gave one more attempt in the period, and how many it reached
    (from the partial index ix_tasks_swept: a range on ``swept_at`` implies its ``IS NOT NULL``)."""
    rows = session.execute(
        select(tasks.c.site, func.count(), func.sum(case((tasks.c.status.in_(REACHED), 1), else_=0)))
        .where(tasks.c.swept_at >= start, tasks.c.swept_at < end, *scope.task_filter())
        .group_by(tasks.c.site)
        .order_by(tasks.c.site)
    ).all()
    by_site = [{"site": site, "swept": n, "recovered": int(recovered or 0)} for site, n, recovered in rows]
    return {"swept": sum(r["swept"] for r in by_site), "recovered": sum(r["recovered"] for r in by_site),
            "by_site": by_site}


def greetings(session: Session, scope: Scope, start: datetime, end: datetime) -> dict[str, Any]:
    """Birthday and anniversary greetings due in the period, and those sent or made."""
    due, done = session.execute(
        select(func.count(), func.sum(case((tasks.c.status.in_(REACHED), 1), else_=0)))
        .where(text(GREETINGS_PREDICATE), tasks.c.due_at >= start, tasks.c.due_at < end,
               tasks.c.status != TaskStatus.CANCELLED, *scope.task_filter())
    ).one()
    return {"due": due, "done": int(done or 0)}


def qa_by_coordinator(session: Session, scope: Scope, start: datetime, end: datetime) -> dict[str, dict[str, Any]]:
    """Calls of the period a supervisor scored, per coordinator: how many, and their average score."""
    rows = session.execute(
        select(attempts.c.by, func.count(), func.avg(qa_reviews.c.score))
        .join(qa_reviews, qa_reviews.c.attempt_id == attempts.c.id)
        .where(attempts.c.at >= start, attempts.c.at < end, attempts.c.site.in_(scope.sites))
        .group_by(attempts.c.by)
    ).all()
    return {by: {"qa_reviewed": n, "qa_avg_score": round(float(avg), 1)} for by, n, avg in rows}
