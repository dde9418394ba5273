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
from core.placement import MilestoneTimes, Placer, milestone_times
from core.protocol import Duration, Milestone
from core.vocab import Urgency

#: An extra call asked for during a call may be made within this long of its target.
EXTRA_CALL_WINDOW = Duration(amount=3, unit="d")


@dataclass(frozen=True)
class Timing:
    """When a task is due relative to its episode's event: what a task keeps as its snapshot."""

    offset: Duration
    earliest: Duration
    latest: Duration
    urgency: str = Urgency.ROUTINE

    @classmethod
    def of(cls, milestone: Milestone) -> Timing:
        return cls(milestone.offset, milestone.window.earliest, milestone.window.latest, milestone.urgency)

    @classmethod
    def stored(cls, offset: str, earliest: str, latest: str, urgency: str) -> Timing:
        """From a task's snapshot columns (``offset``, ``window_earliest``, ``window_latest``)."""
        return cls(Duration.parse(offset), Duration.parse(earliest), Duration.parse(latest), urgency)

    def snapshot(self) -> tuple[str, str, str, str]:
        """The columns a task keeps: (offset, window_earliest, window_latest, urgency)."""
        return str(self.offset), str(self.earliest), str(self.latest), str(self.urgency)


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
        self.placer = Placer(site.calling_windows, site.quiet_hours, self.calendar, site.timezone)
        self.min_gap = site.attempt_policy.min_gap

    # -- the one function ---------------------------------------------------------------------------
    def plan(self, timing: Timing, anchor: datetime, history: History | None = None) -> Plan:
        """Due time, window, next attempt and provisional flag of a task of ``timing`` for an event at ``anchor``."""
        times = milestone_times(anchor, timing.offset, timing.earliest, timing.latest, self.tz)
        return self._plan(times, timing.urgency, history)

    def _plan(self, times: MilestoneTimes, urgency: str, history: History | None) -> Plan:
        due, provisional, outside = self.placer.place_parts(times.target, times.window_start, times.window_end, urgency)
        following = due
        if history is not None and history.attempts:
            if history.callback_at is not None:
                following = history.callback_at
            elif history.last_failed_at is not None:
                following = self.retry(history.last_failed_at, urgency)
            elif history.next_attempt_at is not None:
                following = history.next_attempt_at
        return Plan(times.target, times.window_start, times.window_end, due, following, provisional, outside)

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
        windows = sorted(self.site.calling_windows, key=lambda w: w.start)
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


def planner(config: ChainConfig, site: Site | str) -> Planner:
    """The planner of a site, made once per configuration."""
    site = config.site(site) if isinstance(site, str) else site
    cache: dict[str, Planner] = config.__dict__.setdefault("_planners", {})
    found = cache.get(site.code)
    if found is None or found.site is not site:
        found = cache[site.code] = Planner(config, site)
    return found
