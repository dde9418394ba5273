"""Report periods: ISO weeks, calendar months and quarters in a site's timezone.

A period runs from a local midnight to the next period's local midnight
(exclusive); both ends are converted to UTC for the queries, since every instant
is stored in UTC. The default period is the last *complete* one before ``now``:
on Monday the weekly summary covers the previous Monday–Sunday (DOMAIN.md §3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

from core.errors import FollowupError
from core.messages import Msg

KINDS = ("week", "month", "quarter")
_PATTERNS = {
    "week": re.compile(r"^(\d{4})-W(\d{1,2})$", re.IGNORECASE),
    "month": re.compile(r"^(\d{4})-(\d{1,2})$"),
    "quarter": re.compile(r"^(\d{4})-Q([1-4])$", re.IGNORECASE),
}
_EXAMPLES = {"week": "2026-W47", "month": "2026-11", "quarter": "2026-Q4"}


@dataclass(frozen=True)
class Period:
    """One report period: ``first`` is its first local day, ``after`` the first day after it."""

    kind: str
    first: date
    after: date
    tz: ZoneInfo

    @property
    def label(self) -> str:
        if self.kind == "week":
            year, week, _ = self.first.isocalendar()
            return f"{year}-W{week:02d}"
        if self.kind == "month":
            return f"{self.first.year}-{self.first.month:02d}"
        return f"{self.first.year}-Q{(self.first.month - 1) // 3 + 1}"

    @property
    def last(self) -> date:
        return self.after - timedelta(days=1)

    @property
    def start(self) -> datetime:
        """The local midnight starting the period, in UTC."""
        return datetime.combine(self.first, time(0), self.tz).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """The local midnight after the period, in UTC (exclusive)."""
        return datetime.combine(self.after, time(0), self.tz).astimezone(UTC)

    def day_starts(self) -> list[datetime]:
        """The UTC instant of every local midnight inside the period, then the end."""
        days = (self.after - self.first).days
        return [
            datetime.combine(self.first + timedelta(days=i), time(0), self.tz).astimezone(UTC)
            for i in range(days + 1)
        ]

    def shifted(self, count: int) -> Period:
        """The period ``count`` periods later (negative: earlier)."""
        step = {
            "week": relativedelta(weeks=1),
            "month": relativedelta(months=1),
            "quarter": relativedelta(months=3),
        }
        first = self.first + step[self.kind] * count
        return Period(self.kind, first, first + step[self.kind], self.tz)

    def previous(self) -> Period:
        return self.shifted(-1)

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "label": self.label,
            "first_day": self.first.isoformat(),
            "last_day": self.last.isoformat(),
            "timezone": self.tz.key,
            "start": self.start.astimezone(self.tz).isoformat(),
            "end": self.end.astimezone(self.tz).isoformat(),
            "start_utc": self.start.isoformat(),
            "end_utc": self.end.isoformat(),
        }


def _containing(kind: str, day: date, tz: ZoneInfo) -> Period:
    if kind == "week":
        first = day - timedelta(days=day.weekday())
        return Period(kind, first, first + timedelta(days=7), tz)
    if kind == "month":
        first = day.replace(day=1)
        return Period(kind, first, first + relativedelta(months=1), tz)
    first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return Period(kind, first, first + relativedelta(months=3), tz)


def last_complete(kind: str, now: datetime, tz: ZoneInfo) -> Period:
    """The last period of this kind that ended at or before ``now`` (local time)."""
    return _containing(kind, now.astimezone(tz).date(), tz).previous()


def kind_of(text: str) -> str | None:
    for kind, pattern in _PATTERNS.items():
        if pattern.match(text.strip()):
            return kind
    return None


def parse_period(text: str, tz: ZoneInfo, kind: str | None = None) -> Period:
    """``2026-W47``, ``2026-11`` or ``2026-Q4``; ``kind`` (if given) must agree with the text."""
    found = kind_of(text)
    if found is None:
        raise FollowupError(key="period_not_a_period" if not kind else "period_not_a_kind",
                            values={"text": text, "kind": Msg(f"period_kind.{kind}") if kind else "",
                                    "example": _EXAMPLES.get(kind or "", "")})
    if kind and kind != found:
        raise FollowupError(key="period_wrong_kind",
                            values={"text": text, "found": Msg(f"period_kind.{found}"),
                                    "kind": Msg(f"period_kind.{kind}"), "example": _EXAMPLES[kind]})
    match = _PATTERNS[found].match(text.strip())
    assert match is not None
    year, number = int(match.group(1)), int(match.group(2))
    try:
        if found == "week":
            first = date.fromisocalendar(year, number, 1)
        elif found == "month":
            first = date(year, number, 1)
        else:
            first = date(year, 3 * (number - 1) + 1, 1)
    except ValueError:
        raise FollowupError(key="period_no_such", values={"text": text}) from None
    return _containing(found, first, tz)
