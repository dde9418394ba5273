"""The month-end sweep (seed 002 §12: 每月25–27日 … “无人接听、关机、停机、无法接通”应再次回访).

``followup schedule`` gives every phone follow-up that ended unsuccessful this month
(in its site's timezone) with an unreachable last outcome (no answer, powered off, out
of service, cannot connect) one more attempt on the site's first calling slot of the
sweep days (25–27 by default; chain setting ``sweep.days``). The follow-up itself is
reopened, marked ``swept_at``, with room for exactly one more counted attempt: a
reached (or booked) sweep call completes the original follow-up, another failure
leaves it unsuccessful. Each follow-up is swept at most once. The report counts the
swept and the recovered (core/reports/followups.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.config import ChainConfig
from core.db.models import Attempt, Patient, Task
from core.db.uow import UnitOfWork, unit_of_work
from core.planner import planner
from core.vocab import UNREACHABLE_OUTCOMES, Channel, TaskStatus


@dataclass
class SweepResult:
    swept: int = 0
    by_site: dict[str, str] = field(default_factory=dict)  # site -> local time of its sweep calls


def sweep(session: Session, config: ChainConfig, now: datetime, user: str = "system") -> SweepResult:
    result = SweepResult()
    settings = config.model.sweep
    if not settings.enabled:
        return result
    with unit_of_work(session, config, sites=config.sites, user=user, now=now, action="sweep", turns=False) as uow:
        _sweep(uow, config, now, settings, result)
    return result


def _sweep(uow: UnitOfWork, config: ChainConfig, now: datetime, settings: Any, result: SweepResult) -> None:
    session = uow.session
    for site in config.sites.values():
        slot = planner(config, site).sweep(now, settings.days)
        if slot is None:
            continue
        local = now.astimezone(site.timezone)
        month_start = datetime.combine(local.date().replace(day=1), time(), site.timezone)
        last = (
            select(Attempt.outcome)
            .where(Attempt.task_id == Task.id)
            .order_by(Attempt.at.desc(), Attempt.id.desc())
            .limit(1)
            .correlate(Task)
            .scalar_subquery()
        )
        tasks = session.execute(
            select(Task)
            .join(Patient, Patient.id == Task.patient_id)
            .where(Task.site == site.code, Task.status == TaskStatus.UNSUCCESSFUL, Task.swept_at.is_(None),
                   Task.channel == Channel.PHONE, Task.completed_at >= month_start, Task.completed_at <= now,
                   Patient.do_not_contact.is_(False), Patient.phone_invalid.is_(False),
                   last.in_(UNREACHABLE_OUTCOMES))
            .order_by(Task.id)
        ).scalars().all()
        if not tasks:
            continue
        uow.turns(config.sites)  # reopened tasks move their day counts: every site's turn, in one order
        for task in tasks:
            task.status = TaskStatus.OPEN
            task.swept_at = now
            task.next_attempt_at = slot
            task.max_attempts = task.failed_attempts + 1  # one more counted attempt, then final again
            task.completed_at = None
            task.assignee = None
            task.claimed_until = None
            task.updated_at = now
        result.swept += len(tasks)
        result.by_site[site.code] = slot.astimezone(site.timezone).strftime("%Y-%m-%d %H:%M")
