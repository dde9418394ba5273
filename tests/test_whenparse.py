"""Callback times as people say them (core.whenparse): what each phrase means, and invariants over any clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.whenparse import describe, parse_when, window_starts

TZ = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 11, 23, 10, 5, tzinfo=TZ)


@pytest.mark.parametrize(("typed", "expected"), [
    ("15:00", "2026-11-23 15:00"),
    ("明天下午3点", "2026-11-24 15:00"),
    ("后天上午", "2026-11-25 09:00"),          # a part of the day: the start of that calling window
    ("周一 10:00", "2026-11-30 10:00"),        # said on a Monday: next Monday (today is 今天)
    ("tomorrow 3pm", "2026-11-24 15:00"),
    ("2026-11-24T15:00", "2026-11-24 15:00"),
    ("2026-11-24 15:00+08:00", "2026-11-24 15:00"),
    ("下午三点半", "2026-11-23 15:30"),
    ("两点一刻", "2026-11-23 14:15"),           # an hour 1–6 without 上午 is in the afternoon
    ("3:00", "2026-11-23 15:00"),
    ("03:00", "2026-11-23 03:00"),             # written with its zero: exactly that
    ("下周三上午10点", "2026-12-02 10:00"),
    ("星期五下午", "2026-11-27 14:30"),
    ("next monday 9am", "2026-11-30 09:00"),
    ("Friday 10:00", "2026-11-27 10:00"),
    ("11月25日下午2点", "2026-11-25 14:00"),
    ("12-01 09:30", "2026-12-01 09:30"),
    ("今天晚上7点", "2026-11-23 19:00"),
    ("2小时后", "2026-11-23 12:05"),
    ("in 30 minutes", "2026-11-23 10:35"),
    ("明天", "2026-11-24 09:00"),
    ("tomorrow at 3:30 pm", "2026-11-24 15:30"),
])
def test_what_each_phrase_means(typed: str, expected: str) -> None:
    assert f"{parse_when(typed, MONDAY, TZ):%Y-%m-%d %H:%M}" == expected


@pytest.mark.parametrize("typed", ["soon", "25:00", "2月30日", "明天 blah", "3", ""])
def test_what_is_not_a_time_is_refused_with_a_reason(typed: str) -> None:
    with pytest.raises(ValueError, match="not a time I understand|not a day that exists|not a time of day"):
        parse_when(typed, MONDAY, TZ)


def test_parts_of_the_day_follow_the_sites_calling_windows() -> None:
    from datetime import time

    parts = window_starts([(time(10), time(11, 30)), (time(15, 30), time(17))])
    assert f"{parse_when('后天上午', MONDAY, TZ, parts):%H:%M}" == "10:00"
    assert f"{parse_when('明天下午', MONDAY, TZ, parts):%H:%M}" == "15:30"


def test_the_time_is_read_back_in_the_readers_language() -> None:
    moment = parse_when("明天下午3点", MONDAY, TZ)
    assert describe(moment, "zh_CN") == "2026-11-24（周二）15:00"
    assert describe(moment, "en") == "Tue 2026-11-24 15:00"


nows = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC))
hours, minutes = st.integers(0, 23), st.integers(0, 59)


@given(now=nows, hour=hours, minute=minutes, days=st.sampled_from([("今天", 0), ("明天", 1), ("后天", 2),
                                                                    ("大后天", 3), ("today", 0), ("tomorrow", 1)]))
def test_a_day_word_and_a_clock_time_name_that_local_day_and_time(now, hour, minute, days) -> None:  # type: ignore[no-untyped-def]
    word, ahead = days
    got = parse_when(f"{word} {hour:02d}:{minute:02d}", now, TZ)
    assert got.tzinfo is not None
    assert got.date() == now.astimezone(TZ).date() + timedelta(days=ahead)
    assert (got.hour, got.minute) == (hour, minute)


@given(now=nows, hour=st.integers(1, 11), half=st.booleans())
def test_afternoon_hours_are_after_noon_in_both_languages(now, hour, half) -> None:  # type: ignore[no-untyped-def]
    zh = parse_when(f"明天下午{hour}点" + ("半" if half else ""), now, TZ)
    en = parse_when(f"tomorrow {hour}:{30 if half else 0:02d}pm", now, TZ)
    assert zh == en and zh.hour == hour + 12 and zh.minute == (30 if half else 0)


@given(now=nows, weekday=st.integers(0, 6), hour=st.integers(7, 20))
def test_a_weekday_is_the_next_one_within_a_week(now, weekday, hour) -> None:  # type: ignore[no-untyped-def]
    got = parse_when(f"周{'一二三四五六日'[weekday]} {hour}:00", now, TZ)
    today = now.astimezone(TZ).date()
    assert got.weekday() == weekday and 1 <= (got.date() - today).days <= 7
    english = parse_when(f"{('mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun')[weekday]} {hour}:00", now, TZ)
    assert english == got


@given(moment=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31)), now=nows)
def test_iso_8601_means_exactly_what_it_says(moment, now) -> None:  # type: ignore[no-untyped-def]
    moment = moment.replace(second=0, microsecond=0)
    assert parse_when(moment.isoformat(timespec="minutes"), now, TZ) == moment.replace(tzinfo=TZ)
