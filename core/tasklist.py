"""Listing tasks for people and scripts (``followup tasks``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.config import ChainConfig
from core.db.models import Episode, Patient, Task
from core.vocab import TaskStatus

TASK_COLUMNS = (
    "id", "patient_id", "episode_id", "site", "specialty", "procedure", "milestone", "purpose",
    "channel", "urgency", "status", "due_at", "window_start", "window_end", "attempts",
)


def local_iso(moment: datetime | None, tz: Any) -> str | None:
    """An instant as shown everywhere: ISO 8601 to the minute, in ``tz`` (a site's timezone), with its offset."""
    return moment.astimezone(tz).isoformat(timespec="minutes") if moment else None


def list_tasks(
    session: Session,
    config: ChainConfig,
    *,
    patient: str | None = None,
    episode: str | None = None,
    site: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    now: datetime | None = None,
    user: str | None = None,
) -> list[dict[str, Any]]:
    """Tasks of the sites ``user`` may see as plain dicts; instants in ISO 8601 with the site's UTC offset."""
    from core import access

    sites = access.sites_for(config, user, access.TASKS_READ, site)
    query = (
        select(Task, Patient.external_id, Episode.external_id, Patient.name)
        .join(Patient, Patient.id == Task.patient_id)
        .join(Episode, Episode.id == Task.episode_id)
        .order_by(Task.due_at, Task.id)
    )
    if patient:
        query = query.where(Patient.external_id == patient)
    if episode:
        query = query.where(Episode.external_id == episode)
    if site or len(sites) < len(config.sites):
        query = query.where(Task.site.in_(sites))
    if status:
        query = query.where(Task.status == status)
    if limit:
        query = query.limit(limit)
    out = []
    for task, patient_ext, episode_ext, name in session.execute(query):
        tz = config.timezone_of(task.site)
        out.append({
            "id": task.id,
            "patient_id": patient_ext,
            "patient_name": name,
            "episode_id": episode_ext,
            "site": task.site,
            "specialty": task.specialty,
            "procedure": task.procedure,
            "milestone": task.milestone,
            "purpose": task.purpose,
            "channel": task.channel,
            "urgency": task.urgency,
            "status": task.status,
            "due_at": local_iso(task.due_at, tz),
            "window_start": local_iso(task.window_start, tz),
            "window_end": local_iso(task.window_end, tz),
            "attempts": task.attempts,  # counted (a redial at once is not a new try; core/calls.py)
            "attempts_logged": task.attempts_logged,  # every attempt recorded
            "failed_attempts": task.failed_attempts,
            "max_attempts": task.max_attempts,
            "next_attempt_at": local_iso(task.next_attempt_at, tz) if task.status == TaskStatus.OPEN else None,
            "overdue": task.status == TaskStatus.OPEN and task.window_end < now if now else False,
            "provisional": task.provisional,
            "outside_window": task.outside_window,
            "booked_at": local_iso(task.booked_at, tz),
            "swept_at": local_iso(task.swept_at, tz),
        })
    return out
