"""A patient's own calling time, as a HIS or a coordinator writes it (seed 000: call outside the
patient's working hours).

``preferred_range("晚上")`` is ``"18:00-20:30"``; ``"18:00-20:00"``, ``"18点-20点"``, ``"evening"`` are
understood too. Routine calls go there when their window allows (core/planner.py); quiet hours
(night) are never a preference.
"""

from __future__ import annotations

import re

from core.errors import InvalidValue

#: Words for parts of the day, and the range each means (clinic-local time).
PARTS_OF_DAY = {
    ("上午", "早上", "morning", "am"): "09:00-11:30",
    ("中午", "noon", "lunchtime"): "11:30-13:30",
    ("下午", "afternoon", "pm"): "14:30-17:30",
    ("傍晚", "下班后", "after work"): "17:30-19:30",
    ("晚上", "evening", "night"): "18:00-20:30",
}
_RANGE = re.compile(r"^\s*(\d{1,2})(?:[:：点](\d{2})?)?分?\s*[-–—~～至到]\s*(\d{1,2})(?:[:：点](\d{2})?)?分?\s*$")
EARLIEST, LATEST = 8 * 60, 21 * 60  # outside the default quiet hours


def preferred_range(text: str) -> str:
    """The canonical ``HH:MM-HH:MM`` of a preferred calling time; InvalidValue (with a hint) when unreadable."""
    key = text.strip().casefold()
    for words, span in PARTS_OF_DAY.items():
        if key in words:
            return span
    match = _RANGE.match(text)
    if match:
        h1, m1, h2, m2 = (int(g) if g else 0 for g in match.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if h1 < 24 and h2 < 24 and m1 < 60 and m2 < 60 and start < end and start >= EARLIEST and end <= LATEST:
            return f"{h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}"
    raise InvalidValue(key="import_bad_call_time", values={"text": text})
