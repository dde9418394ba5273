"""Where a follow-up lands in time (DOMAIN.md §3, DESIGN.md §5).

Every milestone is computed from the episode's event time (never from the
previous milestone). A *routine* task moves to a calling window of a working day,
staying inside its window when possible; a *clinical* task keeps its date even on
a holiday and only leaves quiet hours. Pure functions: no database here.
"""

from __future__ import annotations

import calendar as _monthdays
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from core.protocol import Duration
from core.vocab import Urgency

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


#: A window whose end is given in days, weeks, months or years ends with that local calendar day:
#: "5-7 days after discharge" includes all of day 7.
END_OF_DAY = time(23, 59, 59)
CALENDAR_UNITS = frozenset({"d", "w", "mo", "y"})


def end_of_day(local: datetime) -> datetime:
    return datetime.combine(local.date(), END_OF_DAY, local.tzinfo)


def milestone_times(
    anchor: datetime,
    offset: Duration,
    earliest: Duration,
    latest: Duration,
    tz: ZoneInfo,
) -> MilestoneTimes:
    """Target and window of a milestone, from the anchor, in the site's timezone.

    A window's end in days (weeks, months, years) is the end of that local day.
    """
    local = anchor.astimezone(tz)
    end = latest.add_to(local)
    if latest.unit in CALENDAR_UNITS:
        end = end_of_day(end)
    return MilestoneTimes(offset.add_to(local), earliest.add_to(local), end)


def _slots(day: date, windows: Sequence[TimeRangeLike], tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
    out = []
    for w in sorted(windows, key=lambda w: w.start):
        start = datetime.combine(day, w.start, tz)
        end = datetime.combine(day, w.end, tz)
        if end > start:
            out.append((start, end))
    return out


# -- the fast path used by bulk scheduling ----------------------------------------------------------
# ``place`` above is the reference. ``shifter`` and ``Placer`` compute exactly the same
# instants for one site, with the per-day work (working day? calling slots? published?)
# memoised and every per-task step reduced to a few datetime operations: scheduling a
# chain's year places a million tasks on a few hundred distinct days.


_HOURS = tuple(time(h) for h in range(24))


class _RegularDays:
    """Per zone and local date: the UTC offset when it holds all day, else None (a DST day).

    A day counts as regular when the offset is the same at each of its hours and at
    the next midnight. On such a day every wall time exists once, so shifting by
    whole days is exact in UTC too: ``utc + step`` (plus the change of offset).
    """

    def __init__(self) -> None:
        self._zones: dict[Any, dict[date, timedelta | None]] = {}

    def table(self, tz: Any) -> dict[date, timedelta | None]:
        """The memo of one zone (filled by :meth:`offset`), for lookups in a hot loop."""
        found = self._zones.get(tz)
        if found is None:
            found = self._zones[tz] = {}
        return found

    def offset(self, tz: Any, day: date) -> timedelta | None:
        days = self.table(tz)
        if day in days:
            return days[day]
        offsets = {datetime.combine(day, hour, tz).utcoffset() for hour in _HOURS}
        offsets.add(datetime.combine(day + _ONE_DAY, _HOURS[0], tz).utcoffset())
        found = days[day] = offsets.pop() if len(offsets) == 1 else None
        return found


_REGULAR = _RegularDays()
_ONE_DAY = timedelta(days=1)
_UNKNOWN = object()


Shift = Callable[[datetime, datetime, "timedelta | None"], tuple[datetime, datetime]]
_SHIFTERS: dict[tuple[int, str, bool], Shift] = {}


def shifter(duration: Duration, *, to_end_of_day: bool = False) -> Shift:
    """``duration.add_to`` as a function of an anchor, without per-call parsing.

    The function takes the anchor in the site's timezone, in UTC, and its UTC
    offset when its day is regular (else None), and returns the shifted instant
    both ways (site-local, UTC). ``min``/``h`` are elapsed time; ``d``/``w``/``mo``/``y``
    are wall-clock arithmetic (a month clamps to the month's last day) and a wall
    time skipped by a DST gap moves forward, exactly as :meth:`Duration.add_to`.
    One function per distinct duration for the whole process: they are pure, and the
    end-of-day ones remember their answer per day.
    """
    key = (duration.amount, duration.unit, to_end_of_day and duration.unit in CALENDAR_UNITS)
    found = _SHIFTERS.get(key)
    if found is None:
        found = _SHIFTERS[key] = _shifter(*key)
    return found


def _shifter(amount: int, unit: str, to_end_of_day: bool) -> Shift:
    if to_end_of_day:
        shift = _shifter(amount, unit, False)
        days: dict[tuple[Any, date], tuple[datetime, datetime]] = {}

        def then_end_of_day(local: datetime, utc: datetime, offset: timedelta | None) -> tuple[datetime, datetime]:
            # The shifted day depends on the anchor's zone and local date only, unless the shifted
            # wall time fell into a DST gap and moved forward (maybe past midnight): so an answer is
            # remembered per anchor day only when the shifted day has no gap (is regular).
            key = (local.tzinfo, local.date())
            found = days.get(key)
            if found is not None:
                return found
            wall, _ = shift(local, utc, offset)
            found = _exists(datetime.combine(wall.date(), END_OF_DAY, wall.tzinfo))
            if wall.time() == local.time() and _REGULAR.offset(wall.tzinfo, wall.date()) is not None:
                days[key] = found
            return found

        return then_end_of_day
    if unit in ("min", "h"):
        elapsed = timedelta(minutes=amount * (60 if unit == "h" else 1))

        def by_elapsed(local: datetime, utc: datetime, offset: timedelta | None) -> tuple[datetime, datetime]:
            moment = utc + elapsed
            return moment.astimezone(local.tzinfo), moment

        return by_elapsed
    offset_of = _REGULAR.offset
    zones = _REGULAR._zones  # read directly: a method call per shift is measurable at a million tasks
    if unit in ("d", "w"):
        step = timedelta(days=amount * (7 if unit == "w" else 1))

        def by_days(local: datetime, utc: datetime, offset: timedelta | None) -> tuple[datetime, datetime]:
            wall = local + step  # aware + timedelta is wall-clock arithmetic
            if offset is not None:
                tz = wall.tzinfo
                days = zones.get(tz)
                after = _UNKNOWN if days is None else days.get(wall.date(), _UNKNOWN)
                if after is _UNKNOWN:
                    after = offset_of(tz, wall.date())
                if after is not None:
                    return wall, (utc + step if after == offset else utc + (step + offset - after))
            return _exists(wall)

        return by_days
    months = amount * (12 if unit == "y" else 1)

    def by_months(local: datetime, utc: datetime, offset: timedelta | None) -> tuple[datetime, datetime]:
        years, month0 = divmod(local.month - 1 + months, 12)
        year = local.year + years
        day = local.day
        if day > 28:  # every month has 28 days
            day = min(day, _monthdays.monthrange(year, month0 + 1)[1])
        tz = local.tzinfo
        wall = datetime(year, month0 + 1, day, local.hour, local.minute, local.second, local.microsecond, tz)
        days = zones.get(tz)
        after = _UNKNOWN if days is None else days.get(wall.date(), _UNKNOWN)
        if after is _UNKNOWN:
            after = offset_of(tz, wall.date())
        if after is not None:
            return wall, datetime(year, month0 + 1, day, local.hour, local.minute, local.second,
                                  local.microsecond, UTC) - after
        return _exists(wall)

    return by_months


def regular_offset(local: datetime) -> timedelta | None:
    """The UTC offset of ``local``'s day when it holds all day (what :func:`shifter` functions take)."""
    return _REGULAR.offset(local.tzinfo, local.date())


def _exists(wall: datetime) -> tuple[datetime, datetime]:
    """A wall time with its zone attached (fold 0), and in UTC; one inside a DST gap moves forward past it.

    In a gap, fold 0 takes the offset from before the transition, so the round trip
    through UTC lands after it, with another offset: the same test as the reference
    ``_localize`` (the round-tripped wall time differs), at a third of the cost.
    """
    utc = wall.astimezone(UTC)
    back = utc.astimezone(wall.tzinfo)
    return (back if back.utcoffset() != wall.utcoffset() else wall), utc


def without(windows: Sequence[Any], rest: TimeRangeLike | None) -> list[Any]:
    """Calling windows with the rest hours (a daytime range) taken out."""
    if rest is None or not rest.start < rest.end:
        return list(windows)
    out: list[Any] = []
    for w in windows:
        if w.end <= rest.start or w.start >= rest.end:
            out.append(w)
            continue
        if w.start < rest.start:
            out.append(_Range(w.start, rest.start))
        if rest.end < w.end:
            out.append(_Range(rest.end, w.end))
    return out


@dataclass(frozen=True)
class _Range:
    start: time
    end: time

    def contains(self, moment: time) -> bool:
        return self.start <= moment < self.end


class Placer:
    """:func:`place` for one site's calling windows, quiet hours, calendar and timezone, memoised per day."""

    def __init__(
        self,
        windows: Sequence[TimeRangeLike],
        quiet: TimeRangeLike,
        calendar: CalendarLike,
        tz: ZoneInfo,
        rest: TimeRangeLike | None = None,
    ):
        self.windows = without(sorted(windows, key=lambda w: w.start), rest)
        self.rest = rest
        self.quiet = quiet
        self.calendar = calendar
        self.tz = tz
        self._check_published = getattr(calendar, "is_published", None)
        self._slots: dict[date, tuple[tuple[datetime, datetime], ...]] = {}
        self._unpublished: dict[date, bool] = {}

    def slots(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The calling slots of a day, empty when it is not a working day."""
        found = self._slots.get(day)
        if found is None:
            found = self._slots[day] = (
                tuple(_slots(day, self.windows, self.tz)) if self.calendar.is_working_day(day) else ()
            )
        return found

    def next_slot(self, local: datetime) -> datetime | None:
        """:func:`next_calling_slot` for ``local`` (aware, in this site's timezone)."""
        day = local.date()
        known = self._slots
        for _ in range(MAX_SEARCH_DAYS + 1):
            slots = known.get(day)
            if slots is None:
                slots = self.slots(day)
            for start, end in slots:
                if local < end:
                    return start if start > local else local
            day += _ONE_DAY
        return None

    def previous_slot(self, local: datetime, floor: datetime) -> datetime | None:
        """:func:`previous_calling_slot` for aware local ``local`` and ``floor``."""
        day = local.date()
        first = floor.date()
        while day >= first:
            for start, end in reversed(self.slots(day)):
                if start > local or end <= floor:
                    continue
                return start if start > floor else floor
            day -= _ONE_DAY
        return None

    def guessed(self, a: datetime, b: datetime) -> bool:
        """:func:`_guessed`: does any day from ``a`` to ``b`` (local) come from guessed holiday data?"""
        if self._check_published is None:
            return False
        first, last = a.date(), b.date()
        if last < first:
            first, last = last, first
        day = first
        known = self._unpublished
        while day <= last:
            unpublished = known.get(day)
            if unpublished is None:
                unpublished = self._unpublished[day] = not self._check_published(day)
            if unpublished:
                return True
            day += _ONE_DAY
        return False

    def leave_quiet_hours(self, local: datetime) -> datetime:
        quiet = self.quiet
        if not quiet.contains(local.time()):
            return local
        end_today = datetime.combine(local.date(), quiet.end, self.tz)
        return end_today if end_today > local else end_today + _ONE_DAY

    def place(self, target: datetime, window_start: datetime, window_end: datetime, urgency: str) -> Placement:
        """:func:`place` for times already in this site's timezone (as :func:`milestone_times` gives them)."""
        return Placement(*self.place_parts(target, window_start, window_end, urgency))

    def allowed(self, local: datetime, *, rest: bool = True) -> datetime:
        """The first moment at or after ``local`` outside quiet hours (and rest hours, when ``rest``)."""
        quiet, lunch = self.quiet, self.rest if rest else None
        for _ in range(4):
            moment = local.time()
            if quiet.contains(moment):
                end = datetime.combine(local.date(), quiet.end, self.tz)
                local = end if end > local else end + _ONE_DAY
            elif lunch is not None and lunch.contains(moment):
                local = datetime.combine(local.date(), lunch.end, self.tz)
            else:
                break
        return local

    def clinical(self, target: datetime, window_start: datetime, window_end: datetime) -> datetime:
        """A clinical call keeps its date, even on a holiday: its target when allowed, else the earliest
        allowed moment inside its window (the same evening, not the next morning); rest hours give way
        before quiet hours do; a window with no allowed moment ends with the first moment after it."""
        for rest in (True, False):
            due = self.allowed(target, rest=rest)
            if due <= window_end:
                return due
            early = self.allowed(window_start, rest=rest)
            if early <= window_end:
                return early
        return self.allowed(target, rest=False)

    def place_parts(
        self, target: datetime, window_start: datetime, window_end: datetime, urgency: str
    ) -> tuple[datetime, bool, bool]:
        """:meth:`place` as a plain tuple (due_at, provisional, outside_window): no object per task."""
        if urgency == Urgency.CLINICAL:
            due = self.clinical(target, window_start, window_end)
            return due, False, not window_start <= due <= window_end
        # next_slot and guessed, inlined for the usual case: a slot later on the target's own day.
        forward = None
        day = target.date()
        slots = self._slots.get(day)
        if slots is not None:
            for start, end in slots:
                if target < end:
                    forward = start if start > target else target
                    break
        if forward is None:
            forward = self.next_slot(target)
        if forward is not None and forward <= window_end:
            due = forward
        else:
            backward = self.previous_slot(target, window_start)
            if backward is not None:
                due = backward
            else:
                due = forward or target
        if self._check_published is None:
            guessed = False
        elif due.date() == day and (known := self._unpublished.get(day)) is not None:
            guessed = known
        else:
            guessed = self.guessed(target, due)
        return due, guessed, not window_start <= due <= window_end
