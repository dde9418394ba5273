"""Birthday and wedding-anniversary greetings (seeds 002, 003).

The days come from the import (columns ``birthday``, ``anniversary``) or from a call
(answers ``birthday`` / ``anniversary``, stored by the ``record_dates`` action). Each
year ``followup schedule`` creates one greeting task a few days before each day
(chain setting ``greetings.days_before``), on the patient's latest active episode, by
SMS where the site has an ``sms`` channel and by phone otherwise; ``greetings.enabled:
false`` switches them off. The task's time comes from the site's planner
(:meth:`core.planner.Planner.greeting`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.config import ChainConfig, Site
from core.db.models import Episode, Patient, Task
from core.db.uow import unit_of_work
from core.monthday import in_year
from core.planner import planner
from core.protocol import Duration, LocalizedText, Milestone
from core.vocab import Channel, EpisodeStatus, TaskStatus, Trigger, Urgency

GREETING = "greeting"  # the tasks' purpose
KINDS = ("birthday", "anniversary")
NAMES = {
    "birthday": LocalizedText(zh_CN="生日问候", en="Birthday greeting"),
    "anniversary": LocalizedText(zh_CN="结婚纪念日问候", en="Wedding anniversary greeting"),
}


def greeting_channel(config: ChainConfig, site: Site) -> str:
    """``sms`` where the site has an sms channel (and the chain does not ask for calls), else ``phone``."""
    wanted = config.model.greetings.channel
    if wanted == "phone":
        return Channel.PHONE
    has_sms = Channel.SMS in (getattr(site, "channels", None) or {})
    return Channel.SMS if has_sms else Channel.PHONE


def next_day(month_day: str, today: date) -> date:
    """The next time ``month_day`` comes round, today included."""
    found = in_year(month_day, today.year)
    return found if found >= today else in_year(month_day, today.year + 1)


def milestone_key(kind: str, day: date) -> str:
    return f"{GREETING}_{kind}_{day.year}"


def kind_of(milestone: str) -> str:
    return "anniversary" if milestone.startswith(f"{GREETING}_anniversary") else "birthday"


def greeting_milestone(task: Task) -> Milestone:
    """What the call card and the script show for a greeting task."""
    return Milestone(
        key=task.milestone, purpose=GREETING, names=NAMES[kind_of(task.milestone)],
        offset=Duration.parse(task.offset), window=[task.window_earliest, task.window_latest],  # type: ignore[arg-type]
        urgency=task.urgency, channel=task.channel, script="script/greeting.j2",  # type: ignore[arg-type]
        general_questions=False,
    )


def schedule_greetings(session: Session, config: ChainConfig, now: datetime, user: str = "system") -> int:
    """Create the coming greeting task of every patient with a day to greet; returns how many were created."""
    settings = config.model.greetings
    if not settings.enabled:
        return 0
    latest = (
        select(Episode.patient_id, func.max(Episode.occurred_at).label("at"))
        .where(Episode.status == EpisodeStatus.ACTIVE, Episode.site.in_(list(config.sites)))
        .group_by(Episode.patient_id)
        .subquery()
    )
    rows = session.execute(
        select(Patient.id, Patient.birthday, Patient.anniversary, Episode)
        .join(latest, latest.c.patient_id == Patient.id)
        .join(Episode, (Episode.patient_id == Patient.id) & (Episode.occurred_at == latest.c.at))
        .where((Patient.birthday.is_not(None)) | (Patient.anniversary.is_not(None)),
               Patient.do_not_contact.is_(False))
        .order_by(Patient.id, Episode.id)
    ).all()
    existing = {
        (patient_id, milestone) for patient_id, milestone in session.execute(
            select(Task.patient_id, Task.milestone).where(Task.purpose == GREETING))
    }
    created = 0
    seen: set[int] = set()
    with unit_of_work(session, config, sites=config.sites, user=user, now=now, action="greetings",
                      turns=False) as uow:
        for patient_id, birthday, anniversary, episode in rows:
            if patient_id in seen:  # two episodes at the same instant: the first one
                continue
            seen.add(patient_id)
            site = config.sites[episode.site]
            today = now.astimezone(site.timezone).date()
            for kind, month_day in (("birthday", birthday), ("anniversary", anniversary)):
                if not month_day:
                    continue
                day = next_day(month_day, today)
                key = milestone_key(kind, day)
                if (patient_id, key) in existing:
                    continue
                if not created:  # new tasks add to the day counts: every site's turn, in one order
                    uow.turns(config.sites)
                session.add(_task(config, site, episode, key, day, settings.days_before, now))
                existing.add((patient_id, key))
                created += 1
    return created


def _task(config: ChainConfig, site: Site, episode: Episode, key: str, day: date, days_before: int,
          now: datetime) -> Task:
    timing, plan = planner(config, site).greeting(episode.occurred_at, day, days_before)
    offset, earliest, latest, urgency, _ = timing.snapshot()
    values: dict[str, Any] = plan.columns()
    return Task(
        episode_id=episode.id, patient_id=episode.patient_id, site=site.code, specialty=episode.specialty,
        procedure=episode.procedure, trigger=Trigger.GREETING, milestone=key, purpose=GREETING,
        channel=greeting_channel(config, site), urgency=Urgency.ROUTINE, offset=offset, window_earliest=earliest,
        window_latest=latest, status=TaskStatus.OPEN, max_attempts=site.max_failed_attempts, attempts=0,
        failed_attempts=0, created_at=now, updated_at=now, **values,
    )
