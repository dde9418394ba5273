"""The plain, per-episode reference of placement and scheduling.

Production code places tasks through one planner (core/planner.py, with the memoised
:class:`core.placement.Placer`) and schedules in batches (core/scheduling.py). These
functions compute the same instants the slow, obvious way, one task at a time: the
tests and benchmarks/scale.py check the fast path against them. Not used by core.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.config import Site
from core.db.models import Episode
from core.placement import (
    MAX_SEARCH_DAYS,
    CalendarLike,
    MilestoneTimes,
    Placement,
    TimeRangeLike,
    _slots,
    milestone_times,
    without,
)
from core.protocol import Milestone
from core.scheduling import EXPIRY_GRACE, applies
from core.vocab import TaskStatus, Urgency


def times_for(anchor: datetime, milestone: Milestone, tz: ZoneInfo) -> MilestoneTimes:
    return milestone_times(anchor, milestone.offset, milestone.window.earliest, milestone.window.latest, tz)


def next_calling_slot(
    after: datetime,
    windows: Sequence[TimeRangeLike],
    calendar: CalendarLike,
    tz: ZoneInfo,
    *,
    limit_days: int = MAX_SEARCH_DAYS,
) -> datetime | None:
    """The first moment at or after ``after`` inside a calling window of a working day."""
    local = after.astimezone(tz)
    for i in range(limit_days + 1):
        day = local.date() + timedelta(days=i)
        if not calendar.is_working_day(day):
            continue
        for start, end in _slots(day, windows, tz):
            if local < end:
                return max(local, start)
    return None


def previous_calling_slot(
    before: datetime,
    not_before: datetime,
    windows: Sequence[TimeRangeLike],
    calendar: CalendarLike,
    tz: ZoneInfo,
) -> datetime | None:
    """The latest calling-window start (or ``not_before``) that is ≤ ``before`` and ≥ ``not_before``."""
    local = before.astimezone(tz)
    floor = not_before.astimezone(tz)
    day = local.date()
    while day >= floor.date():
        if calendar.is_working_day(day):
            for start, end in reversed(_slots(day, windows, tz)):
                if start > local or end <= floor:
                    continue
                return max(start, floor)
        day -= timedelta(days=1)
    return None


def leave_quiet_hours(moment: datetime, quiet: TimeRangeLike, tz: ZoneInfo) -> datetime:
    """Move a clinical call out of quiet hours to the moment they end (same date or the next)."""
    local = moment.astimezone(tz)
    if not quiet.contains(local.time()):
        return local
    end_today = datetime.combine(local.date(), quiet.end, tz)
    return end_today if end_today > local else end_today + timedelta(days=1)


def _free(moment: datetime, quiet: TimeRangeLike, rest: TimeRangeLike | None, tz: ZoneInfo) -> datetime:
    """The first moment at or after ``moment`` outside quiet hours and ``rest``."""
    local = moment.astimezone(tz)
    while True:
        if quiet.contains(local.time()):
            local = leave_quiet_hours(local, quiet, tz)
        elif rest is not None and rest.contains(local.time()):
            local = datetime.combine(local.date(), rest.end, tz)
        else:
            return local


def clinical(times: MilestoneTimes, quiet: TimeRangeLike, rest: TimeRangeLike | None, tz: ZoneInfo) -> datetime:
    """A clinical call: its target when free, else the earliest free moment in its window (rest hours
    give way before quiet hours do), else out of quiet hours after its target."""
    for lunch in (rest, None):
        for start in (times.target, times.window_start):
            due = _free(start, quiet, lunch, tz)
            if due <= times.window_end:
                return due
    return _free(times.target, quiet, None, tz)


def place(
    times: MilestoneTimes,
    urgency: str,
    *,
    windows: Sequence[TimeRangeLike],
    quiet: TimeRangeLike,
    calendar: CalendarLike,
    tz: ZoneInfo,
    rest: TimeRangeLike | None = None,
) -> Placement:
    """Place one task. Never fails: a task that cannot fit its window is placed after it, flagged."""
    if urgency == Urgency.CLINICAL:
        due = clinical(times, quiet, rest, tz)
        return Placement(due, provisional=False, outside_window=not times.window_start <= due <= times.window_end)
    windows = without(list(windows), rest)
    forward = next_calling_slot(times.target, windows, calendar, tz)
    if forward is not None and forward <= times.window_end:
        due = forward
    else:
        backward = previous_calling_slot(times.target, times.window_start, windows, calendar, tz)
        if backward is not None:
            due = backward
        else:
            due = forward or times.target
    inside = times.window_start <= due <= times.window_end
    provisional = _guessed(times.target, due, calendar, tz)
    return Placement(due, provisional=provisional, outside_window=not inside)


def _guessed(a: datetime, b: datetime, calendar: Any, tz: ZoneInfo) -> bool:
    """True when any day between ``a`` and ``b`` comes from guessed (unpublished) holiday data."""
    is_published = getattr(calendar, "is_published", None)
    if is_published is None:
        return False
    first, last = sorted((a.astimezone(tz).date(), b.astimezone(tz).date()))
    day = first
    while day <= last:
        if not is_published(day):
            return True
        day += timedelta(days=1)
    return False



def task_rows(
    episode: Episode,
    site: Site,
    milestones: Iterable[Milestone],
    *,
    calendar: Any,
    max_attempts: int,
    now: datetime,
    do_not_contact: bool,
    config: Any = None,
) -> list[dict[str, Any]]:
    """The task rows of one episode (not yet stored); ``config``: the chain, for reminders before an event."""
    rows = []
    for ms in milestones:
        if not applies(ms, episode.attributes or {}):
            continue
        times = times_for(episode.occurred_at, ms, site.timezone)
        if ms.before is not None:  # a reminder: the planner's own rule (tests/test_placement.py checks it)
            from core.planner import Timing, planner

            one = planner(config, site).plan(Timing.of(ms), episode.occurred_at)
            times = MilestoneTimes(one.target_at, one.window_start, one.window_end)
            placed = Placement(one.due_at, one.provisional, one.outside_window)
        else:
            placed = place(
                times, ms.urgency, windows=site.calling_windows, quiet=site.quiet_hours,
                calendar=calendar, tz=site.timezone, rest=site.rest_hours,
            )
        status = TaskStatus.OPEN
        if do_not_contact:
            status = TaskStatus.SUPPRESSED
        elif times.window_end < now - EXPIRY_GRACE:
            status = TaskStatus.EXPIRED
        rows.append({
            "episode_id": episode.id,
            "patient_id": episode.patient_id,
            "site": site.code,
            "specialty": episode.specialty,
            "procedure": episode.procedure,
            "trigger": episode.trigger,
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
            "before_event": str(ms.event_at) if ms.before and ms.event_at else None,
            "provisional": placed.provisional,
            "outside_window": placed.outside_window,
            "status": status,
            "max_attempts": max_attempts,
            "attempts": 0,
            "failed_attempts": 0,
            "attempts_logged": 0,
            "next_attempt_at": placed.due_at,
            "created_at": now,
            "updated_at": now,
        })
    return rows


