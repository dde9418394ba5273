"""Offsets and windows of milestones (DESIGN.md §3, §5): how durations are written and added."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from core.placement import milestone_times
from core.protocol import Duration, Milestone, Window

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
NAMES = {"zh_CN": "回访", "en": "Call"}


def milestone(offset: str, window: list[str], **extra: object) -> Milestone:
    return Milestone.model_validate(
        {
            "key": "call",
            "purpose": "check_in",
            "names": NAMES,
            "offset": offset,
            "window": window,
            **extra,
        }
    )


# --- writing durations -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "amount", "unit"),
    [
        ("30min", 30, "min"),
        ("2h", 2, "h"),
        ("24h", 24, "h"),
        ("3d", 3, "d"),
        ("2w", 2, "w"),
        ("3mo", 3, "mo"),
        ("1y", 1, "y"),
    ],
)
def test_duration_accepts_number_and_unit(text: str, amount: int, unit: str) -> None:
    duration = Duration.parse(text)
    assert (duration.amount, duration.unit) == (amount, unit)
    assert str(duration) == text


@pytest.mark.parametrize("text", ["3 days", "5", "d3", "", "3x", "1.5d", "3 mo later"])
def test_duration_rejects_text_without_a_known_unit(text: str) -> None:
    with pytest.raises(ValidationError, match="invalid duration"):
        Duration.parse(text)


def test_bare_number_in_yaml_is_rejected_with_a_hint_to_add_a_unit() -> None:
    with pytest.raises(ValidationError, match="add a unit, e.g. '5d'"):
        Duration.model_validate(5)


def test_duration_round_trips_through_its_serialised_form() -> None:
    ms = milestone("10d", ["1w", "2w"])
    dumped = ms.model_dump()
    assert dumped["offset"] == "10d"
    assert dumped["window"] == ["1w", "2w"]
    assert Milestone.model_validate(dumped) == ms


def test_adding_to_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        Duration.parse("1d").add_to(datetime(2026, 3, 1, 10, 0))


# --- elapsed time versus calendar time ---------------------------------------------------


def test_24h_is_elapsed_time_across_spring_dst_change() -> None:
    # Europe/Berlin moves its clocks from 02:00 to 03:00 on 2026-03-29.
    surgery = datetime(2026, 3, 28, 10, 0, tzinfo=BERLIN)
    due = Duration.parse("24h").add_to(surgery)
    assert due.astimezone(UTC) - surgery.astimezone(UTC) == timedelta(hours=24)  # real hours ...
    assert (due.day, due.hour) == (29, 11)  # ... so the wall clock reads 11:00


def test_1d_keeps_the_wall_clock_time_across_spring_dst_change() -> None:
    surgery = datetime(2026, 3, 28, 10, 0, tzinfo=BERLIN)
    due = Duration.parse("1d").add_to(surgery)
    assert (due.day, due.hour, due.minute) == (29, 10, 0)
    assert due.astimezone(UTC) - surgery.astimezone(UTC) == timedelta(hours=23)


def test_1d_keeps_the_wall_clock_time_across_autumn_dst_change() -> None:
    surgery = datetime(2026, 10, 24, 10, 0, tzinfo=BERLIN)
    due = Duration.parse("1d").add_to(surgery)
    assert (due.day, due.hour) == (25, 10)
    assert due.astimezone(UTC) - surgery.astimezone(UTC) == timedelta(hours=25)


def test_day_offset_landing_in_a_dst_gap_moves_forward_not_back() -> None:
    # 02:30 does not exist in Berlin on 2026-03-29.
    surgery = datetime(2026, 3, 28, 2, 30, tzinfo=BERLIN)
    due = Duration.parse("1d").add_to(surgery)
    assert due.astimezone(UTC) > surgery.astimezone(UTC) + timedelta(hours=22)
    assert due.astimezone(BERLIN).hour == 3


def test_minutes_are_elapsed_time() -> None:
    missed = datetime(2026, 5, 6, 9, 40, tzinfo=SHANGHAI)
    assert Duration.parse("30min").add_to(missed) == datetime(2026, 5, 6, 10, 10, tzinfo=SHANGHAI)


# --- calendar months --------------------------------------------------------------------


def test_jan_31_plus_one_month_is_feb_28() -> None:
    anchor = datetime(2026, 1, 31, 10, 0, tzinfo=SHANGHAI)
    assert Duration.parse("1mo").add_to(anchor) == datetime(2026, 2, 28, 10, 0, tzinfo=SHANGHAI)


def test_jan_31_plus_one_month_is_feb_29_in_a_leap_year() -> None:
    anchor = datetime(2028, 1, 31, 10, 0, tzinfo=SHANGHAI)
    assert Duration.parse("1mo").add_to(anchor) == datetime(2028, 2, 29, 10, 0, tzinfo=SHANGHAI)


def test_feb_29_plus_one_year_is_feb_28() -> None:
    anchor = datetime(2028, 2, 29, 10, 0, tzinfo=SHANGHAI)
    assert Duration.parse("1y").add_to(anchor) == datetime(2029, 2, 28, 10, 0, tzinfo=SHANGHAI)


def test_later_milestones_are_computed_from_the_anchor_not_chained() -> None:
    # Chaining (Jan 31 -> Feb 28 -> Mar 28) would drift; from the anchor it is Mar 31.
    anchor = datetime(2026, 1, 31, 10, 0, tzinfo=SHANGHAI)
    one, two, three = (Duration.parse(f"{n}mo") for n in (1, 2, 3))
    times = milestone_times(anchor, two, one, three, SHANGHAI)
    assert times.target.date().isoformat() == "2026-03-31"
    assert times.window_start.date().isoformat() == "2026-02-28"
    assert times.window_end.date().isoformat() == "2026-04-30"


def test_milestone_times_are_in_the_site_timezone_whatever_the_anchor_zone() -> None:
    # 23:00 UTC on 2026-04-30 is already 07:00 on 2026-05-01 in Shanghai: day offsets count from there.
    anchor = datetime(2026, 4, 30, 23, 0, tzinfo=UTC)
    one_day = Duration.parse("1d")
    times = milestone_times(anchor, one_day, one_day, one_day, SHANGHAI)
    assert times.target == datetime(2026, 5, 2, 7, 0, tzinfo=SHANGHAI)
    assert times.target.utcoffset() == timedelta(hours=8)


@given(
    anchor=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 31)),
    months=st.integers(min_value=1, max_value=24),
)
def test_month_offset_equals_relativedelta_from_the_anchor(anchor: datetime, months: int) -> None:
    local = anchor.replace(tzinfo=SHANGHAI)
    offset = Duration.parse(f"{months}mo")
    times = milestone_times(local, offset, offset, offset, SHANGHAI)
    assert times.target.replace(tzinfo=None) == anchor + relativedelta(months=months)


@given(
    anchor=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 31)),
    days=st.integers(min_value=0, max_value=400),
)
def test_day_offset_keeps_wall_clock_in_a_dst_zone(anchor: datetime, days: int) -> None:
    local = anchor.replace(tzinfo=BERLIN)
    due = Duration.parse(f"{days}d").add_to(local)
    expected = anchor + timedelta(days=days)
    # Equal wall clock, except a time skipped by the spring change, which moves forward one hour.
    assert due.replace(tzinfo=None) in (expected, expected + timedelta(hours=1))
    assert due.date() == expected.date()


@given(
    anchor=st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
    ),
    hours=st.integers(min_value=0, max_value=72),
)
def test_hour_offset_is_elapsed_time_in_any_zone(anchor: datetime, hours: int) -> None:
    for tz in (BERLIN, SHANGHAI, ZoneInfo("America/New_York")):
        due = Duration.parse(f"{hours}h").add_to(anchor.astimezone(tz))
        assert due.astimezone(UTC) - anchor == timedelta(hours=hours)


# --- milestone validation --------------------------------------------------------------


def test_milestone_offset_inside_window_is_accepted() -> None:
    ms = milestone("6d", ["5d", "7d"])
    assert ms.window == Window.model_validate(["5d", "7d"])


def test_milestone_offset_outside_window_is_rejected_naming_offset_and_window() -> None:
    with pytest.raises(ValidationError) as info:
        milestone("9d", ["5d", "7d"])
    message = str(info.value)
    assert "offset 9d lies outside its window [5d, 7d]" in message


def test_milestone_offset_before_window_is_rejected() -> None:
    with pytest.raises(ValidationError, match="offset 2h lies outside its window"):
        milestone("2h", ["1d", "2d"])


def test_window_with_earliest_after_latest_is_rejected_naming_the_window() -> None:
    with pytest.raises(ValidationError) as info:
        milestone("6d", ["7d", "5d"])
    errors = info.value.errors()
    assert errors[0]["loc"] == ("window",)
    assert "window earliest 7d is after latest 5d" in errors[0]["msg"]


def test_window_must_be_a_pair() -> None:
    with pytest.raises(ValidationError, match=r"a window is \[earliest, latest\]"):
        milestone("6d", ["5d", "6d", "7d"])


def test_bad_duration_inside_a_milestone_names_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        milestone("6 days", ["5d", "7d"])
    assert info.value.errors()[0]["loc"][0] == "offset"


def test_windows_compare_mixed_units() -> None:
    assert milestone("1mo", ["4w", "6w"]).offset == Duration.parse("1mo")
    with pytest.raises(ValidationError, match="outside its window"):
        milestone("1mo", ["1w", "3w"])


def test_window_written_as_one_value_asks_for_a_pair() -> None:
    with pytest.raises(
        ValidationError, match=r"a window is \[earliest, latest\], e.g. \[5d, 7d\], not '5d'"
    ):
        milestone("5d", "5d")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("locale", "expected"), [("zh_CN", "回访"), ("en", "Call"), ("fr", "Call"), ("copy", "Call")]
)
def test_localized_text_falls_back_to_english_for_any_other_locale(
    locale: str, expected: str
) -> None:
    from core.protocol import LocalizedText

    assert LocalizedText.model_validate(NAMES).get(locale) == expected


@pytest.mark.parametrize("text", ["101y", "1300mo", "99999999d"])
def test_absurdly_long_duration_is_rejected_when_read_not_when_scheduling(text: str) -> None:
    with pytest.raises(ValidationError, match="longer than 100 years"):
        Duration.parse(text)


def test_hundred_years_is_still_a_duration() -> None:
    anchor = datetime(2026, 1, 31, 10, 0, tzinfo=SHANGHAI)
    assert Duration.parse("100y").add_to(anchor).year == 2126
