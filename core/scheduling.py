"""Turning episodes into tasks, idempotently (``followup schedule``).

One task per (episode, milestone), enforced by a unique key, so scheduling twice
creates nothing new. Rows are written with bulk Core inserts in batches, so
memory stays bounded however many episodes there are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.config import ChainConfig, Site
from core.db.models import Episode, Patient, Task
from core.placement import place, times_for
from core.plugins import Plugins
from core.protocol import Duration, Milestone, Window

# A milestone whose window closed more than this long before it was scheduled
# (history imported when a clinic starts) is stored as "expired": visible and
# counted, but not put on anyone's worklist. A window that closed recently is an
# open, overdue task: it is still worth the call.
EXPIRY_GRACE = timedelta(days=14)


@dataclass
class ScheduleResult:
    episodes: int = 0
    created: int = 0
    existing: int = 0
    provisional: int = 0
    expired: int = 0
    suppressed: int = 0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("episodes", "created", "existing", "provisional", "expired", "suppressed", "problems")}


def applies(milestone: Milestone, attributes: dict[str, Any]) -> bool:
    """Does a milestone's ``when`` match the episode? A missing attribute counts as false/unknown."""
    for key, expected in milestone.when.items():
        got = attributes.get(key)
        if got is None and expected in (False, None):
            continue
        if got != expected:
            return False
    return True


class Protocols:
    """Effective milestones per site and procedure (plugin milestones + site overrides), cached."""

    def __init__(self, config: ChainConfig, plugins: Plugins):
        self.config, self.plugins = config, plugins
        self._cache: dict[tuple[str, str, str], list[Milestone]] = {}

    def milestones(self, site: Site, specialty: str, procedure: str) -> list[Milestone]:
        key = (site.code, specialty, procedure)
        if key not in self._cache:
            found = [m for _, m in self.plugins.milestones(specialty, procedure)]
            self._cache[key] = site.apply_overrides(specialty, procedure, found)
        return self._cache[key]

    def max_attempts(self, site: Site, specialty: str, procedure: str) -> int:
        spec = self.plugins.specialty(specialty)
        proc = spec.procedure(procedure) if spec else None
        return (proc.max_attempts if proc and proc.max_attempts else None) or site.max_failed_attempts


def task_rows(
    episode: Episode,
    site: Site,
    milestones: Iterable[Milestone],
    *,
    calendar: Any,
    max_attempts: int,
    now: datetime,
    do_not_contact: bool,
) -> list[dict[str, Any]]:
    """The task rows of one episode (not yet stored)."""
    rows = []
    for ms in milestones:
        if not applies(ms, episode.attributes or {}):
            continue
        times = times_for(episode.occurred_at, ms, site.timezone)
        placed = place(
            times, ms.urgency, windows=site.calling_windows, quiet=site.quiet_hours,
            calendar=calendar, tz=site.timezone,
        )
        status = "open"
        if do_not_contact:
            status = "suppressed"
        elif times.window_end < now - EXPIRY_GRACE:
            status = "expired"
        rows.append({
            "episode_id": episode.id,
            "patient_id": episode.patient_id,
            "site": site.code,
            "specialty": episode.specialty,
            "procedure": episode.procedure,
            "milestone": ms.key,
            "purpose": ms.purpose,
            "channel": ms.channel,
            "urgency": ms.urgency,
            "due_at": placed.due_at,
            "window_start": times.window_start,
            "window_end": times.window_end,
            "target_at": times.target,
            "offset": str(ms.offset),
            "window_earliest": str(ms.window.earliest),
            "window_latest": str(ms.window.latest),
            "provisional": placed.provisional,
            "outside_window": placed.outside_window,
            "status": status,
            "max_attempts": max_attempts,
            "attempts": 0,
            "failed_attempts": 0,
            "next_attempt_at": placed.due_at,
            "created_at": now,
            "updated_at": now,
        })
    return rows


def schedule(
    session: Session,
    config: ChainConfig,
    plugins: Plugins,
    now: datetime,
    *,
    episode_ids: Iterable[int] | None = None,
    batch_size: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> ScheduleResult:
    """Create the missing tasks of every active episode (or of ``episode_ids``)."""
    protocols = Protocols(config, plugins)
    result = ScheduleResult()
    query = (
        select(Episode, Patient.do_not_contact)
        .join(Patient, Patient.id == Episode.patient_id)
        .where(Episode.status == "active")
        .order_by(Episode.id)
    )
    if episode_ids is not None:
        query = query.where(Episode.id.in_(list(episode_ids)))
    batch: list[tuple[Episode, bool]] = []
    for episode, dnc in session.execute(query.execution_options(yield_per=batch_size)):
        batch.append((episode, bool(dnc)))
        if len(batch) >= batch_size:
            _schedule_batch(session, config, protocols, batch, now, result)
            if progress:
                progress(len(batch))
            batch = []
    if batch:
        _schedule_batch(session, config, protocols, batch, now, result)
        if progress:
            progress(len(batch))
    return result


def _schedule_batch(
    session: Session,
    config: ChainConfig,
    protocols: Protocols,
    batch: list[tuple[Episode, bool]],
    now: datetime,
    result: ScheduleResult,
) -> None:
    ids = [e.id for e, _ in batch]
    existing = _existing_tasks(session, ids)
    rows: list[dict[str, Any]] = []
    for episode, dnc in batch:
        result.episodes += 1
        site = config.sites.get(episode.site)
        if site is None:
            result.problems.append(f"episode {episode.external_id}: site {episode.site!r} is not in the configuration")
            continue
        if episode.specialty not in site.specialties:
            result.problems.append(
                f"episode {episode.external_id}: specialty {episode.specialty!r} is not enabled at site {site.code}"
            )
            continue
        milestones = protocols.milestones(site, episode.specialty, episode.procedure)
        for row in task_rows(
            episode, site, milestones,
            calendar=site.calendar(config),
            max_attempts=protocols.max_attempts(site, episode.specialty, episode.procedure),
            now=now, do_not_contact=dnc,
        ):
            if (episode.id, row["milestone"]) in existing:
                result.existing += 1
                continue
            rows.append(row)
    if rows:
        # Count what was really inserted: a concurrent run may have stored some rows first.
        stmt = _insert_ignoring_duplicates(session).returning(Task.status, Task.provisional)
        inserted = session.execute(stmt, rows).all()
        skipped = len(rows) - len(inserted)
        result.created += len(inserted)
        result.existing += skipped
        result.provisional += sum(1 for status, provisional in inserted if provisional and status == "open")
        result.expired += sum(1 for status, _ in inserted if status == "expired")
        result.suppressed += sum(1 for status, _ in inserted if status == "suppressed")
    session.execute(update(Episode).where(Episode.id.in_(ids)).values(scheduled_at=now))


def _existing_tasks(session: Session, episode_ids: list[int]) -> set[tuple[int, str]]:
    """(episode, milestone) pairs already stored; the unique key still guards against a concurrent run."""
    query = select(Task.episode_id, Task.milestone).where(Task.episode_id.in_(episode_ids))
    return {(episode_id, milestone) for episode_id, milestone in session.execute(query)}


def _insert_ignoring_duplicates(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover
        from sqlalchemy import insert as plain

        return plain(Task)
    return insert(Task).on_conflict_do_nothing(index_elements=["episode_id", "milestone"])


def replan(session: Session, config: ChainConfig, now: datetime) -> int:
    """Re-place open provisional tasks now that holiday data may have arrived. Returns how many moved."""
    moved = 0
    query = (
        select(Task, Episode.occurred_at)
        .join(Episode, Episode.id == Task.episode_id)
        .where(Task.status == "open", Task.provisional.is_(True))
    )
    for task, occurred_at in session.execute(query).all():
        site = config.sites.get(task.site)
        if site is None:
            continue
        window = Window(earliest=Duration.parse(task.window_earliest), latest=Duration.parse(task.window_latest))
        ms_times = times_for(
            occurred_at,
            Milestone(
                key=task.milestone, purpose=task.purpose, names={"zh_CN": task.milestone, "en": task.milestone},
                offset=Duration.parse(task.offset), window=window, urgency=task.urgency,  # type: ignore[arg-type]
            ),
            site.timezone,
        )
        placed = place(
            ms_times, task.urgency, windows=site.calling_windows, quiet=site.quiet_hours,
            calendar=site.calendar(config), tz=site.timezone,
        )
        if placed.due_at != task.due_at or placed.provisional != task.provisional:
            moved += placed.due_at != task.due_at
            task.due_at = placed.due_at
            if task.attempts == 0:
                task.next_attempt_at = placed.due_at
            task.provisional = placed.provisional
            task.outside_window = placed.outside_window
            task.updated_at = now
    return moved
