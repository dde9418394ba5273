"""Working days, holidays and make-up workdays (调休).

The default China calendar answers from ``chinesecalendar`` for the years the
State Council has published (it raises ``NotImplementedError`` beyond them) and
falls back to ``holidays`` for later years, which *guesses* them (no make-up
workdays). A date in a guessed year is not published: routine tasks placed on
it are marked provisional and re-placed by ``followup schedule --replan`` once
the data arrives, either from a newer package or from the year's notice added
to the chain YAML (``holiday_notices``).

Other countries use ``holidays.country_holidays`` and count as published.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any


@dataclass(frozen=True)
class YearNotice:
    """An official holiday notice for one year: days off and make-up workdays."""

    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()


class ChinaCalendar:
    """CN working days: chinesecalendar where published, ``holidays`` (guessed) beyond."""

    country = "CN"

    @staticmethod
    @lru_cache(maxsize=8192)
    def _published(day: date) -> bool | None:
        try:
            import chinese_calendar
        except ImportError:  # pragma: no cover - dependency is declared
            return None
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            return None

    def is_published(self, day: date) -> bool:
        return self._published(day) is not None

    def is_working_day(self, day: date) -> bool:
        published = self._published(day)
        if published is not None:
            return published
        return _guessed_working_day("CN", day)

    def published_until(self) -> date:
        year = date.today().year
        while self._published(date(year + 1, 1, 1)) is not None:
            year += 1
        while self._published(date(year, 1, 1)) is None and year > 2004:
            year -= 1
        return date(year, 12, 31)


class HolidaysCalendar:
    """Any country the ``holidays`` package knows; its data counts as published."""

    def __init__(self, country: str) -> None:
        self.country = country
        _days_off(country, date.today().year)  # a country ``holidays`` does not know raises here

    def is_published(self, day: date) -> bool:
        return True

    def is_working_day(self, day: date) -> bool:
        return _guessed_working_day(self.country, day)

    def published_until(self) -> date:
        return date(9999, 12, 31)


@lru_cache(maxsize=32)
def _country_holidays(country: str) -> Any:
    """One ``holidays`` calendar per country for the whole process, shared by every site's calendar, built
    at the first day chinesecalendar has not published (the package is slow to import). Each site built its
    own before: 50 sites, 50 calendars filling their years' holidays, a tenth of a chain's scheduling."""
    import holidays as holidays_pkg

    return holidays_pkg.country_holidays(country)


def _guessed_working_day(country: str, day: date) -> bool:
    """``holidays``' answer for one day (see :func:`_days_off`)."""
    return day not in _days_off(country, day.year)


@lru_cache(maxsize=256)
def _days_off(country: str, year: int) -> frozenset[date]:
    """The days of ``year`` that ``holidays`` says are not working days in ``country``: asked once per
    process, and kept in the per-user cache (core/cache.py, keyed by the installed distributions, so a new
    ``holidays`` release is asked again). A command that finds them there does not import the package,
    which costs a tenth of a second, about 5% of scheduling 50,000 tasks."""
    import os
    import sys

    from core import cache

    key = [country, year, cache.stamp([p for p in sys.path if p and os.path.isdir(p)])]
    found = cache.get("days-off", key)
    first = date(year, 1, 1).toordinal()
    if isinstance(found, list) and all(type(n) is int for n in found):  # days since 1 January
        return frozenset(date.fromordinal(first + n) for n in found)
    cal = _country_holidays(country)
    off = [n for n in range(date(year, 12, 31).toordinal() - first + 1)
           if not cal.is_working_day(date.fromordinal(first + n))]
    cache.put("days-off", key, off)
    return frozenset(date.fromordinal(first + n) for n in off)


def default_calendar(country: str) -> Any:
    return _default_calendar(country.upper())


@lru_cache(maxsize=32)
def _default_calendar(country: str) -> Any:
    """One calendar per country: both kinds answer from process-wide data, and one object lets sites
    with the same calendar share their per-day work (:func:`calendar_key`)."""
    if country == "CN":
        return ChinaCalendar()
    return HolidaysCalendar(country)


@dataclass
class SiteCalendar:
    """A site's view: the country calendar plus chain notices, site closures and extra workdays.

    Answers are memoised per day: scheduling a year of a chain asks about the same
    few hundred days millions of times. The memo belongs to this object, so a new
    calendar (new notices, a new config) starts afresh.
    """

    base: Any
    notices: Mapping[int, YearNotice] = field(default_factory=dict)
    closed: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()
    _working: dict[date, bool] = field(default_factory=dict, init=False, repr=False, compare=False)
    _published: dict[date, bool] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        base: Any,
        notices: Mapping[int, YearNotice] | None = None,
        closed: Iterable[date] = (),
        extra_workdays: Iterable[date] = (),
    ) -> SiteCalendar:
        return cls(base, dict(notices or {}), frozenset(closed), frozenset(extra_workdays))

    def is_working_day(self, day: date) -> bool:
        known = self._working.get(day)
        if known is None:
            known = self._working[day] = self._is_working_day(day)
        return known

    def _is_working_day(self, day: date) -> bool:
        if day in self.closed:
            return False
        if day in self.extra_workdays:
            return True
        notice = self.notices.get(day.year)
        if notice is not None:
            if day in notice.holidays:
                return False
            if day in notice.workdays:
                return True
            if self.base.is_published(day):
                return self.base.is_working_day(day)
            return day.weekday() < 5
        return bool(self.base.is_working_day(day))

    def is_published(self, day: date) -> bool:
        known = self._published.get(day)
        if known is None:
            known = self._published[day] = bool(day.year in self.notices or self.base.is_published(day))
        return known


def calendar_key(calendar: Any) -> Any:
    """What a calendar's answers depend on, hashable, or None when unknown.

    Sites whose calendars have equal keys answer every day alike, so they can share
    the per-day work of placement (core.planner): a chain's sites mostly differ only in
    their closed days, if at all. A calendar of a kind not known here is its own key.
    """
    if isinstance(calendar, SiteCalendar):
        base = calendar_key(calendar.base)
        if base is None:
            return None
        return (SiteCalendar, base, tuple(sorted(calendar.notices.items())), calendar.closed,
                calendar.extra_workdays)
    try:
        hash(calendar)
    except TypeError:
        return None
    return calendar
