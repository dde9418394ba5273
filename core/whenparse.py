"""Times as people say them: ``15:00``, ``明天下午3点``, ``后天上午``, ``周一 10:00``, ``tomorrow 3pm``, ISO 8601.

:func:`parse_when` turns what a coordinator types (the patient's words) into an
absolute, timezone-aware local time, relative to ``now`` in the site's timezone.
A day without a time means the start of a calling window (上午 the morning one,
下午 the afternoon one); a time without a day means today; an hour from 1 to 6
without 上午/am is in the afternoon (``三点`` is 15:00). It never guesses a
different day than the one said: whether the result is in the past is the
caller's check (and message).

Understood, in any order, separated by spaces or not:

* days: ``今天 明天 后天 大后天``, ``today tomorrow``, ``day after tomorrow``;
  weekdays ``周一 星期一 礼拜一 下周一`` / ``mon monday next monday`` (the next such
  day after today; ``下周一`` / ``next monday``: the one of next week); dates
  ``11月24日`` ``11月24号`` ``11-24`` ``2026-11-24`` ``11/24``;
* parts of the day: ``上午 早上 中午 下午 晚上``, ``am pm``, ``morning afternoon evening``;
* clock times: ``15:00`` ``15点`` ``3点半`` ``3点15`` ``三点`` ``两点一刻`` ``3pm`` ``3:30 pm``;
* relative: ``2小时后`` ``半小时后`` ``30分钟后``, ``in 2 hours`` ``in 30 minutes``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from core.errors import InvalidValue

# when only a part of the day is said: the time it starts (overridden by the site's calling windows)
PARTS = {"morning": time(9, 0), "noon": time(12, 0), "afternoon": time(14, 30), "evening": time(19, 0)}
_PART_WORDS = {
    "上午": "morning", "早上": "morning", "早晨": "morning", "上班": "morning", "morning": "morning", "am": "morning",
    "a.m.": "morning", "中午": "noon", "noon": "noon", "下午": "afternoon", "afternoon": "afternoon",
    "pm": "afternoon", "p.m.": "afternoon", "晚上": "evening", "傍晚": "evening", "evening": "evening",
    "tonight": "evening",
}
_DAY_WORDS = {
    "今天": 0, "今日": 0, "today": 0, "明天": 1, "明日": 1, "tomorrow": 1, "tmr": 1, "后天": 2, "大后天": 3,
}
_WEEKDAYS = {
    **{c: i for i, c in enumerate("一二三四五六日")}, "天": 6, "七": 6,
}
_EN_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
              "九": 9, "十": 10}

_NUM = r"(\d{1,2}|[零〇一二两三四五六七八九十]{1,3})"
_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("relative", re.compile(r"^(?:in\s*)?(\d{1,3}|半|[一二两三四五六七八九十]{1,2})\s*(?:个)?\s*"
                            r"(小时|hours?|hrs?|h|分钟|minutes?|mins?|m)\s*(?:后|以后|之后|later)?$")),
    ("iso_date", re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:日|号)?")),
    ("cn_date", re.compile(r"(\d{1,2})月(\d{1,2})(?:日|号)")),
    ("short_date", re.compile(r"(?<![\d:])(\d{1,2})[-/](\d{1,2})(?![\d:])")),
    ("next_weekday_cn", re.compile(r"下(?:个)?(?:周|星期|礼拜)([一二三四五六日天七])")),
    ("weekday_cn", re.compile(r"(?:周|星期|礼拜)([一二三四五六日天七])")),
    ("day_after_tomorrow", re.compile(r"(?:the\s+)?day\s+after\s+tomorrow")),
    ("day_word", re.compile(r"大后天|后天|明天|明日|今天|今日|\btoday\b|\btomorrow\b|\btmr\b")),
    ("weekday_en", re.compile(r"(?:\b(next)\s+)?\b(mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)"
                              r"(?:day|nesday|sday|urday|rsday)?\b")),
    ("clock", re.compile(r"(?<!\d)(\d{1,2})[:：](\d{2})(?!\d)")),
    ("cn_clock", re.compile(_NUM + r"\s*[点點时](?:\s*(半|一刻|三刻|(\d{1,2}|[零〇一二三四五六七八九十]{1,3})"
                            r"\s*分?))?")),
    ("en_clock", re.compile(r"(?<![\d:])(\d{1,2})(?:\s*(?:o'clock))?\s*(?=(?:am|pm|a\.m\.|p\.m\.)\b)")),
    ("part", re.compile(r"上午|早上|早晨|中午|下午|傍晚|晚上|\bmorning\b|\bafternoon\b|\bevening\b|\btonight\b"
                        r"|\bnoon\b|a\.m\.|p\.m\.|\bam\b|\bpm\b")),
]


def _cn_number(text: str) -> int:
    if text.isdigit():
        return int(text)
    if text.startswith("十"):
        return 10 + (_CN_DIGITS.get(text[1:], 0) if len(text) > 1 else 0)
    if "十" in text:
        tens, _, ones = text.partition("十")
        return _CN_DIGITS[tens] * 10 + (_CN_DIGITS[ones] if ones else 0)
    return _CN_DIGITS[text]


def window_starts(windows: Sequence[Any]) -> dict[str, time]:
    """The parts of the day from a site's calling windows: 上午 is the first window before noon, 下午 after."""
    starts = sorted(getattr(w, "start", w[0] if isinstance(w, (tuple, list)) else w) for w in windows)
    parts = dict(PARTS)
    morning = [s for s in starts if s < time(12)]
    afternoon = [s for s in starts if s >= time(12)]
    if morning:
        parts["morning"] = morning[0]
    if afternoon:
        parts["afternoon"] = afternoon[0]
    return parts


def parse_when(text: str, now: datetime, tz: Any, parts: dict[str, time] | None = None) -> datetime:
    """The local time ``text`` names, as an aware datetime in ``tz``; :class:`InvalidValue` if not understood."""
    raw = text.strip()
    if not raw:
        raise InvalidValue(key="when_not_understood", values={"text": text})
    local_now = now.astimezone(tz)
    iso = _iso(raw, tz)
    if iso is not None:
        return iso
    rest = raw.lower()
    found: dict[str, re.Match[str]] = {}
    for name, pattern in _RULES:
        match = pattern.search(rest)
        if match is None:
            continue
        if name == "relative":
            return _relative(match, local_now)
        found[name] = match
        rest = rest[: match.start()] + " " * (match.end() - match.start()) + rest[match.end():]
    leftover = re.sub(r"[\s,，.。的at@点]+", "", rest.replace("at ", ""))
    if leftover or not found:
        raise InvalidValue(key="when_not_understood", values={"text": text})
    day = _day(found, local_now)
    part = _part(found)
    clock = _clock(found, part, text)
    if clock is None:
        clock = (parts or PARTS)[part or "morning"]
    moment = datetime.combine(day, clock)
    return _localize(moment, tz)


def _iso(raw: str, tz: Any) -> datetime | None:
    if not re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}", raw):
        return None
    try:
        moment = datetime.fromisoformat(raw.replace(" ", "T", 1))
    except ValueError:
        return None
    return _localize(moment, tz) if moment.tzinfo is None else moment.astimezone(tz)


def _localize(naive: datetime, tz: Any) -> datetime:
    from core.protocol import _localize as wall_time  # DST gaps move forward, as everywhere

    return wall_time(naive, tz)


def _relative(match: re.Match[str], local_now: datetime) -> datetime:
    amount, unit = match.group(1), match.group(2)
    minutes = 30 if amount == "半" else _cn_number(amount)
    if unit.startswith(("小时", "hour", "hr", "h")):
        minutes = 30 if amount == "半" else minutes * 60
    return (local_now + timedelta(minutes=minutes)).replace(second=0, microsecond=0)


def _day(found: dict[str, re.Match[str]], local_now: datetime) -> date:
    today = local_now.date()
    if m := found.get("iso_date"):
        return _date(int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(0))
    for name in ("cn_date", "short_date"):
        if m := found.get(name):
            month, day = int(m.group(1)), int(m.group(2))
            candidate = _date(today.year, month, day, m.group(0))
            return candidate if candidate >= today else _date(today.year + 1, month, day, m.group(0))
    if m := found.get("next_weekday_cn"):
        monday = today - timedelta(days=today.weekday()) + timedelta(days=7)
        return monday + timedelta(days=_WEEKDAYS[m.group(1)])
    if m := found.get("weekday_cn"):
        return _next_weekday(today, _WEEKDAYS[m.group(1)])
    if m := found.get("weekday_en"):
        weekday = _EN_WEEKDAYS.index(m.group(2)[:3])
        if m.group(1):
            monday = today - timedelta(days=today.weekday()) + timedelta(days=7)
            return monday + timedelta(days=weekday)
        return _next_weekday(today, weekday)
    if found.get("day_after_tomorrow"):
        return today + timedelta(days=2)
    if m := found.get("day_word"):
        return today + timedelta(days=_DAY_WORDS[m.group(0)])
    return today


def _date(year: int, month: int, day: int, text: str) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise InvalidValue(key="when_no_such_day", values={"text": text}) from None


def _next_weekday(today: date, weekday: int) -> date:
    """The next such weekday after today (周一 said on a Monday is next Monday: today is 今天)."""
    ahead = (weekday - today.weekday()) % 7 or 7
    return today + timedelta(days=ahead)


def _part(found: dict[str, re.Match[str]]) -> str | None:
    m = found.get("part")
    return _PART_WORDS[m.group(0)] if m else None


def _clock(found: dict[str, re.Match[str]], part: str | None, text: str) -> time | None:
    hour = minute = None
    loose = True  # "3:00", 三点: an hour 1–6 is in the afternoon; "03:00" is exactly that
    if m := found.get("clock"):
        hour, minute = int(m.group(1)), int(m.group(2))
        loose = len(m.group(1)) == 1
    elif m := found.get("cn_clock"):
        hour = _cn_number(m.group(1))
        extra = m.group(2)
        minute = {None: 0, "半": 30, "一刻": 15, "三刻": 45}.get(extra)
        if minute is None:
            minute = _cn_number(m.group(3))
    elif m := found.get("en_clock"):
        hour, minute = int(m.group(1)), 0
    if hour is None:
        return None
    if part is None and loose and 1 <= hour <= 6:  # 三点 / 3:00 on a call back is in the afternoon, not at night
        hour += 12
    elif part in ("afternoon", "evening") and hour < 12:
        hour += 12
    elif part == "noon" and hour < 6:
        hour += 12
    elif part == "morning" and hour == 12:
        hour = 0
    if not (0 <= hour <= 23 and 0 <= (minute or 0) <= 59):
        raise InvalidValue(key="when_no_such_time", values={"text": text})
    return time(hour, minute or 0)


def describe(moment: datetime, locale: str | None) -> str:
    """An absolute local time as people read it back: ``2026-11-24（周二）15:00`` / ``Tue 2026-11-24 15:00``."""
    if locale == "zh_CN":
        return f"{moment.date().isoformat()}（周{'一二三四五六日'[moment.weekday()]}）{moment:%H:%M}"
    return f"{moment:%a} {moment.date().isoformat()} {moment:%H:%M}"
