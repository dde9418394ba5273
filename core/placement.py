"""Where a follow-up lands in time (DOMAIN.md §3, DESIGN.md §5).

Every milestone is computed from the episode's event time (never from the
previous milestone). A *routine* task moves to a calling window of a working day,
staying inside its window when possible; a *clinical* task keeps its date even on
a holiday and only leaves quiet hours. Pure functions: no database here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from core.protocol import Duration, Milestone

MAX_SEARCH_DAYS = 60


class TimeRangeLike(Protocol):
    start: time
    end: time

    def contains(self, moment: time) -> bool: ...


class CalendarLike(Protocol):
    def is_working_day(self, day: date) -> bool: ...
    def is_published(self, day: date) -> bool: ...


@dataclass(frozen=True)
class MilestoneTimes:
    target: datetime
    window_start: datetime
    window_end: datetime


@dataclass(frozen=True)
class Placement:
    due_at: datetime
    provisional: bool = False
    outside_window: bool = False


def milestone_times(
    anchor: datetime,
    offset: Duration,
    earliest: Duration,
    latest: Duration,
    tz: ZoneInfo,
) -> MilestoneTimes:
    """Target and window of a milestone, from the anchor, in the site's timezone."""
    local = anchor.astimezone(tz)
    return MilestoneTimes(offset.add_to(local), earliest.add_to(local), latest.add_to(local))


def times_for(anchor: datetime, milestone: Milestone, tz: ZoneInfo) -> MilestoneTimes:
    return milestone_times(anchor, milestone.offset, milestone.window.earliest, milestone.window.latest, tz)


def _slots(day: date, windows: Sequence[TimeRangeLike], tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
    out = []
    for w in sorted(windows, key=lambda w: w.start):
        start = datetime.combine(day, w.start, tz)
        end = datetime.combine(day, w.end, tz)
        if end > start:
            out.append((start, end))
    return out


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


def place(
    times: MilestoneTimes,
    urgency: str,
    *,
    windows: Sequence[TimeRangeLike],
    quiet: TimeRangeLike,
    calendar: CalendarLike,
    tz: ZoneInfo,
) -> Placement:
    """Place one task. Never fails: a task that cannot fit its window is placed after it, flagged."""
    if urgency == "clinical":
        due = leave_quiet_hours(times.target, quiet, tz)
        return Placement(due, provisional=False, outside_window=due > times.window_end)
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
