"""The one place a task gets a time (DESIGN.md §8 "One planner").

Every time a task is given a time - scheduled, reconciled after a record or a
protocol changed, re-placed once holiday data arrives, retried after a failed
attempt, called back, added during a call - one :class:`Planner` of its site
computes it, from the task's timing (offset and window, measured from the
episode's event), the episode's event time, the site's calendar and what has
happened so far (:class:`History`). The rules themselves are DOMAIN.md §3:

* a *routine* task goes to a calling window of a working day, inside its window
  when it can (forward first, then back), flagged when it cannot;
* a *clinical* task keeps its date, even on a holiday, and only leaves quiet hours;
* a retry goes to another calling window than the one that failed, at least the
  chain's minimum gap later, on a working day (any day for a clinical task);
* a requested callback is taken as asked, unless it is past or in quiet hours.

The memoised per-day work lives in :class:`~core.placement.Placer`; bulk
scheduling uses the same placer through :meth:`Planner.placer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from core.config import ChainConfig, Site
from core.errors import FollowupError
from core.placement import END_OF_DAY, MilestoneTimes, Placer, milestone_times, without
from core.protocol import Duration, Milestone
from core.vocab import Urgency

#: An extra call asked for during a call may be made within this long of its target.
EXTRA_CALL_WINDOW = Duration.model_construct(amount=3, unit="d")  # not validated: no validator built on import


@dataclass(frozen=True)
class Timing:
    """When a task is due relative to its episode's event: what a task keeps as its snapshot."""

    offset: Duration
    earliest: Duration
    latest: Duration
    urgency: str = Urgency.ROUTINE
    before: Duration | None = None  # the event this call prepares (a reminder reaches the patient before it)

    @classmethod
    def of(cls, milestone: Milestone) -> Timing:
        before = milestone.event_at if milestone.before else None
        return cls(milestone.offset, milestone.window.earliest, milestone.window.latest, milestone.urgency, before)

    @classmethod
    def stored(cls, offset: str, earliest: str, latest: str, urgency: str, before: str | None = None) -> Timing:
        """From a task's snapshot columns (``offset``, ``window_earliest``, ``window_latest``, ``before_event``)."""
        return cls(Duration.parse(offset), Duration.parse(earliest), Duration.parse(latest), urgency,
                   Duration.parse(before) if before else None)

    def snapshot(self) -> tuple[str, str, str, str, str | None]:
        """The columns a task keeps: (offset, window_earliest, window_latest, urgency, before_event)."""
        return (str(self.offset), str(self.earliest), str(self.latest), str(self.urgency),
                str(self.before) if self.before else None)


@dataclass(frozen=True)
class History:
    """What happened to a task so far, as far as its next attempt is concerned."""

    attempts: int = 0  # attempts logged
    last_failed_at: datetime | None = None  # the last counted failed attempt, when it is the latest word
    callback_at: datetime | None = None  # a callback the patient asked for, when it is the latest word
    next_attempt_at: datetime | None = None  # as stored: kept when nothing newer decides


@dataclass(frozen=True)
class Plan:
    target_at: datetime
    window_start: datetime
    window_end: datetime
    due_at: datetime
    next_attempt_at: datetime
    provisional: bool
    outside_window: bool

    def columns(self) -> dict[str, Any]:
        """The task columns this plan sets."""
        return {
            "target_at": self.target_at, "window_start": self.window_start, "window_end": self.window_end,
            "due_at": self.due_at, "next_attempt_at": self.next_attempt_at, "provisional": self.provisional,
            "outside_window": self.outside_window,
        }


class _EveryDay:
    """A calendar with no holidays: clinical retries are not postponed by a public holiday (DOMAIN.md §3)."""

    @staticmethod
    def is_working_day(day: date) -> bool:
        return True


class Planner:
    """Times for the tasks of one site (calling windows, quiet hours, calendar, timezone)."""

    def __init__(self, config: ChainConfig, site: Site):
        self.site = site
        self.tz = site.timezone
        self.calendar = site.calendar(config)
        self.placer = _shared_placer(config, site, self.calendar)
        self.min_gap = site.attempt_policy.min_gap
        self._preferred: dict[tuple[Any, Any], Placer] = {}

    # -- the one function ---------------------------------------------------------------------------
    def plan(self, timing: Timing, anchor: datetime, history: History | None = None, *,
             preferred: Any = None) -> Plan:
        """Due time, window, next attempt and provisional flag of a task of ``timing`` for an event at ``anchor``.

        ``preferred`` is the patient's own calling time (a time range, e.g. 18:00-20:00): a routine
        call goes there when its window allows, else to the site's calling windows.
        """
        times = milestone_times(anchor, timing.offset, timing.earliest, timing.latest, self.tz)
        if timing.before is not None:
            times = self._before_event(times, timing.before.add_to(anchor.astimezone(self.tz)))
        reminder_floor = anchor if timing.before is not None else None
        return self._plan(times, timing.urgency, history, preferred=preferred, floor=reminder_floor)

    @staticmethod
    def _before_event(times: MilestoneTimes, event: datetime) -> MilestoneTimes:
        """A reminder's window ends with the day before its event: never on or after what it reminds of."""
        cap = datetime.combine(event.date() - timedelta(days=1), END_OF_DAY, event.tzinfo)
        end = min(times.window_end, cap)
        return MilestoneTimes(min(times.target, end), min(times.window_start, end), end)

    def _placer_for(self, preferred: Any) -> Placer:
        key = (preferred.start, preferred.end)
        found = self._preferred.get(key)
        if found is None:
            found = self._preferred[key] = Placer([preferred], self.site.quiet_hours, self.calendar, self.tz)
        return found

    def _plan(self, times: MilestoneTimes, urgency: str, history: History | None, *, preferred: Any = None,
              floor: datetime | None = None) -> Plan:
        """``floor``: for a reminder, the event's anchor (the fallback searches back to it)."""
        target, start, end = times.target, times.window_start, times.window_end
        due, provisional, outside = self.placer.place_parts(target, start, end, urgency)
        if preferred is not None and urgency == Urgency.ROUTINE:
            own = self._placer_for(preferred).place_parts(target, start, end, urgency)
            if not own[2]:
                due, provisional, outside = own
        if outside and urgency == Urgency.ROUTINE and floor is not None:
            # No working day in the window of a reminder: the last working day before its event, else its date.
            back = self.placer.previous_slot(end, floor.astimezone(self.tz))
            if back is not None and back <= end:
                due, outside, start = back, False, min(start, back)
            else:  # no working day before it either: the reminder keeps its date, like a clinical call
                due = self.placer.clinical(target, start, end)
                outside = not start <= due <= end
        following = due
        if history is not None and history.attempts:
            if history.callback_at is not None:
                following = history.callback_at
            elif history.last_failed_at is not None:
                following = self.retry(history.last_failed_at, urgency)
            elif history.next_attempt_at is not None:
                following = history.next_attempt_at
        return Plan(times.target, start, end, due, following, provisional, outside)

    # -- what follows an attempt ---------------------------------------------------------------------
    def retry(self, failed_at: datetime, urgency: str = Urgency.ROUTINE) -> datetime:
        """The next try after a failed one: another calling window, at least the minimum gap later.

        A clinical task's retry keeps to calling windows but is not held back by a
        holiday: a 24-hour implant check that failed on 1 October is tried again
        that afternoon, not on 8 October.
        """
        calendar: Any = _EveryDay() if urgency == Urgency.CLINICAL else self.calendar
        tz = self.tz
        local = failed_at.astimezone(tz)
        windows = without(sorted(self.site.calling_windows, key=lambda w: w.start), self.site.rest_hours)
        failed_index = next((i for i, w in enumerate(windows) if w.contains(local.time())), None)
        earliest = self.min_gap.add_to(local)
        day = earliest.date()
        for _ in range(90):
            if calendar.is_working_day(day):
                for i, w in enumerate(windows):
                    if failed_index is not None and len(windows) > 1 and i == failed_index:
                        continue  # morning <-> afternoon: another window than the one that failed
                    start = datetime.combine(day, w.start, tz)
                    end = datetime.combine(day, w.end, tz)
                    if end > earliest:
                        return max(start, earliest)
            day += timedelta(days=1)
        return earliest  # pragma: no cover - no working day in 90 days

    # -- messages (core/outbox.py) -------------------------------------------------------------------
    def fallback_call(self, now: datetime, window_end: datetime, urgency: str = Urgency.ROUTINE) -> datetime:
        """A message that failed, or a questionnaire left unanswered, becomes a call: the next calling
        window from now, inside the task's window when it can (at least two days to find one)."""
        end = max(window_end, now + timedelta(days=2))
        return self.placer.place_parts(now, now, end, urgency)[0]

    def notice_at(self, due_at: datetime, at: time) -> datetime:
        """When the notice of a call goes out: the day before it, at ``at`` local time."""
        day = due_at.astimezone(self.tz).date() - timedelta(days=1)
        return datetime.combine(day, at, self.tz)

    def next_day(self, now: datetime) -> datetime:
        """A message held back today (the patient's daily limit): tomorrow's first calling window."""
        first = min(w.start for w in self.site.calling_windows)
        return datetime.combine(now.astimezone(self.tz).date() + timedelta(days=1), first, self.tz)

    def callback(self, at: datetime, now: datetime) -> datetime:
        """A callback the patient asked for is taken as asked (checked by :func:`callback_problem` first)."""
        problem = callback_problem(self.site, at, now)
        if problem is not None:
            raise FollowupError(key=problem[0], values=problem[1])
        return at

    def extra_call(self, anchor: datetime, now: datetime, after: Duration) -> tuple[Timing, Plan]:
        """A follow-up asked for during a call: ``after`` from now, within three days.

        Its timing is kept like every other task's, measured from the episode's event
        (elapsed minutes), so re-planning recomputes it from there.
        """
        target = after.add_to(now.astimezone(self.tz))
        window_end = EXTRA_CALL_WINDOW.add_to(target)

        def since_event(moment: datetime) -> Duration:
            return Duration(amount=max(0, int((moment - anchor).total_seconds() // 60)), unit="min")

        timing = Timing(since_event(target), since_event(target), since_event(window_end), Urgency.ROUTINE)
        times = MilestoneTimes(target=target, window_start=target, window_end=window_end)
        return timing, self._plan(times, Urgency.ROUTINE, None)

    def greeting(self, anchor: datetime, day: date, days_before: int) -> tuple[Timing, Plan]:
        """A birthday or anniversary greeting: from ``days_before`` days before ``day`` to the day itself,
        in a calling window of a working day (an SMS too: never at night). Its timing is kept from the
        episode's event, like an extra call's."""
        tz = self.tz
        start = datetime.combine(day - timedelta(days=days_before), time(), tz)
        end = datetime.combine(day + timedelta(days=1), time(), tz)

        def since_event(moment: datetime) -> Duration:
            return Duration(amount=max(0, int((moment - anchor).total_seconds() // 60)), unit="min")

        timing = Timing(since_event(start), since_event(start), since_event(end), Urgency.ROUTINE)
        return timing, self._plan(MilestoneTimes(target=start, window_start=start, window_end=end),
                                  Urgency.ROUTINE, None)

    def sweep(self, now: datetime, days: list[int]) -> datetime | None:
        """The month-end sweep's call: the first calling slot, from now, on this month's sweep days that
        are working days (the next working day's when none of them is); None once they are past."""
        local = now.astimezone(self.tz)
        today = local.date()
        last = today.replace(day=max(days))
        if last < today:
            return None
        for number in sorted(days):
            day = today.replace(day=number)
            if day < today:
                continue
            for start, end in self.placer.slots(day):
                if local < end:
                    return max(start, local)
        return self.placer.next_slot(max(local, datetime.combine(last + timedelta(days=1), time(), self.tz)))


def callback_problem(site: Site, at: datetime, now: datetime) -> tuple[str, dict[str, Any]] | None:
    """Why a requested callback time cannot be taken (message key and values), or None.

    It must lie ahead, and not in the quiet hours (even clinical calls wait).
    """
    tz = site.timezone
    local = at.astimezone(tz)
    if at <= now:
        return "callback_in_past", {"at": local.isoformat(timespec="minutes"),
                                    "now": now.astimezone(tz).isoformat(timespec="minutes")}
    if site.quiet_hours.contains(local.time()):
        return "callback_quiet_hours", {"at": f"{local:%Y-%m-%d %H:%M}", "quiet": str(site.quiet_hours)}
    return None


def _shared_placer(config: ChainConfig, site: Site, calendar: Any) -> Placer:
    """The site's :class:`Placer`, shared with every site of the configuration placing alike.

    A placer memoises per day (working day? calling slots? published?); sites with the same
    calling windows, quiet and rest hours, timezone and an equal calendar give the same
    answers, so 50 sites fill one memo instead of 50 (scheduling a few thousand episodes
    otherwise spends most of its placement time filling memos).
    """
    from core.calendar import calendar_key

    def hours(value: Any) -> Any:
        return None if value is None else (value.start, value.end)

    made = Placer(site.calling_windows, site.quiet_hours, calendar, site.timezone, site.rest_hours)
    cal = calendar_key(calendar)
    if cal is None:
        return made
    key = (tuple(hours(w) for w in made.windows), hours(site.quiet_hours), hours(site.rest_hours), site.timezone, cal)
    cache: dict[Any, Placer] = config.__dict__.setdefault("_placers", {})
    return cache.setdefault(key, made)


def planner(config: ChainConfig, site: Site | str) -> Planner:
    """The planner of a site, made once per configuration."""
    site = config.site(site) if isinstance(site, str) else site
    cache: dict[str, Planner] = config.__dict__.setdefault("_planners", {})
    found = cache.get(site.code)
    if found is None or found.site is not site:
        found = cache[site.code] = Planner(config, site)
    return found
