"""Days a patient is greeted on: a month and a day, stored as ``MM-DD`` (birthday, anniversary).

A full date (1990-05-12), ``05-12``, ``5/12``, ``5月12日`` and ``12 May`` are all read.
29 February is kept, and greeted on 28 February in other years.
"""

from __future__ import annotations

import re
from datetime import date, datetime

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
_NUMERIC = re.compile(r"^(?:(\d{4})[-/.年])?\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?$")
_WORDS = re.compile(r"^(\d{1,2})\s+([a-z]{3})[a-z]*\.?$|^([a-z]{3})[a-z]*\.?\s+(\d{1,2})$")


def parse_month_day(value: object) -> str | None:
    """``MM-DD``, or None when ``value`` is not a month and day."""
    if isinstance(value, datetime | date):
        return f"{value.month:02d}-{value.day:02d}"
    text = str(value).strip().casefold()
    month = day = None
    match = _NUMERIC.match(text)
    if match:
        month, day = int(match.group(2)), int(match.group(3))
    else:
        words = _WORDS.match(text)
        if words:
            name = words.group(2) or words.group(3)
            number = words.group(1) or words.group(4)
            month, day = _MONTHS.get(name[:3]), int(number)
    if month is None or day is None:
        return None
    try:
        date(2000, month, day)  # a leap year: 02-29 exists
    except ValueError:
        return None
    return f"{month:02d}-{day:02d}"


def in_year(month_day: str, year: int) -> date:
    """The day ``month_day`` falls on in ``year`` (29 February on the 28th in other years)."""
    month, day = int(month_day[:2]), int(month_day[3:])
    try:
        return date(year, month, day)
    except ValueError:
        return date(year, month, 28)
