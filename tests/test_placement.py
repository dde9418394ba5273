"""Where a follow-up lands (DOMAIN.md §3, DESIGN.md §5).

Routine calls go to a calling window (09:00–11:30, 14:30–17:30) of a working day
inside their window; clinical calls keep their date, holiday or not, and only
leave quiet hours (21:00–08:00). Dates are real 2026 China facts from
chinesecalendar: National Day 2026-10-01..07, back to work Thursday 2026-10-08,
make-up workdays Sunday 2026-09-20 and Saturday 2026-10-10.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from reference import leave_quiet_hours, next_calling_slot, place

from core.calendar import SiteCalendar, YearNotice, default_calendar
from core.config import TimeRange
from core.placement import Placement, milestone_times
from core.protocol import Duration

SHANGHAI = ZoneInfo("Asia/Shanghai")
LONDON = ZoneInfo("Europe/London")
WINDOWS = [TimeRange.model_validate("09:00-11:30"), TimeRange.model_validate("14:30-17:30")]
QUIET = TimeRange.model_validate("21:00-08:00")
CHINA = default_calendar("CN")
CN = SiteCalendar.build(CHINA)


def at(text: str, tz: ZoneInfo = SHANGHAI) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=tz)


def placed(
    anchor: datetime,
    offset: str,
    window: tuple[str, str],
    urgency: str = "routine",
    *,
    calendar: SiteCalendar = CN,
    tz: ZoneInfo = SHANGHAI,
) -> Placement:
    times = milestone_times(
        anchor, Duration.parse(offset), Duration.parse(window[0]), Duration.parse(window[1]), tz
    )
    return place(times, urgency, windows=WINDOWS, quiet=QUIET, calendar=calendar, tz=tz)


# --- routine calls --------------------------------------------------------------------


def test_routine_call_skips_national_day() -> None:
    # Procedure on 2026-09-30, day-1 call would be on 2026-10-01 (National Day).
    result = placed(at("2026-09-30T10:00"), "1d", ("1d", "10d"))
    assert result.due_at == at("2026-10-08T09:00")
    assert not result.outside_window and not result.provisional


def test_routine_call_on_a_make_up_saturday_stays() -> None:
    # 2026-10-10 is a Saturday and an official make-up workday (调休).
    result = placed(at("2026-10-09T10:00"), "1d", ("1d", "3d"))
    assert result.due_at == at("2026-10-10T10:00")


def test_routine_call_on_a_make_up_sunday_stays() -> None:
    result = placed(at("2026-09-19T15:00"), "1d", ("1d", "3d"))
    assert result.due_at == at("2026-09-20T15:00")


def test_routine_call_on_an_ordinary_sunday_moves_to_monday() -> None:
    result = placed(at("2026-06-06T10:00"), "1d", ("1d", "3d"))  # target Sunday 2026-06-07
    assert result.due_at == at("2026-06-08T09:00")


def test_routine_call_at_lunch_moves_to_the_afternoon_window() -> None:
    result = placed(at("2026-06-02T12:30"), "1d", ("1d", "2d"))
    assert result.due_at == at("2026-06-03T14:30")


def test_routine_call_in_the_evening_moves_to_next_working_morning() -> None:
    result = placed(at("2026-06-02T18:00"), "1d", ("1d", "3d"))
    assert result.due_at == at("2026-06-04T09:00")


def test_routine_call_on_friday_evening_moves_to_monday_morning() -> None:
    result = placed(at("2026-06-04T18:00"), "1d", ("1d", "5d"))  # target Friday 2026-06-05 18:00
    assert result.due_at == at("2026-06-08T09:00")


def test_routine_call_inside_a_calling_window_keeps_its_time() -> None:
    result = placed(at("2026-06-02T10:17"), "1d", ("1d", "2d"))
    assert result.due_at == at("2026-06-03T10:17")


def test_routine_call_that_cannot_wait_past_the_holiday_is_called_before_it() -> None:
    # Window [0d, 1d] from 2026-09-30 15:00 holds only the afternoon of the 30th as working time.
    result = placed(at("2026-09-30T15:00"), "1d", ("0d", "1d"))
    assert result.due_at == at("2026-09-30T15:00")
    assert not result.outside_window


def test_routine_call_with_no_working_day_in_its_window_is_flagged() -> None:
    # The whole window (Oct 1 10:00 - Oct 3 10:00) is National Day: never lost, placed after, flagged.
    result = placed(at("2026-09-30T10:00"), "1d", ("1d", "3d"))
    assert result.due_at == at("2026-10-08T09:00")
    assert result.outside_window


def test_site_closure_day_is_skipped() -> None:
    closed = SiteCalendar.build(CHINA, closed=[date(2026, 6, 3)])
    result = placed(at("2026-06-02T10:00"), "1d", ("1d", "3d"), calendar=closed)
    assert result.due_at == at("2026-06-04T09:00")


def test_site_extra_workday_accepts_routine_calls() -> None:
    opened = SiteCalendar.build(CHINA, extra_workdays=[date(2026, 6, 7)])  # a Sunday
    result = placed(at("2026-06-06T10:00"), "1d", ("1d", "3d"), calendar=opened)
    assert result.due_at == at("2026-06-07T10:00")


# --- unpublished years ---------------------------------------------------------------------


def test_routine_call_in_unpublished_year_is_placed_provisionally() -> None:
    assert not CHINA.is_published(date(2027, 6, 15))
    result = placed(at("2026-06-15T10:00"), "1y", ("11mo", "13mo"))  # one-year implant review
    assert result.due_at == at("2027-06-15T10:00")
    assert result.provisional


def test_year_notice_makes_the_unpublished_year_definite() -> None:
    notice = YearNotice(holidays=frozenset({date(2027, 6, 15)}), workdays=frozenset())
    with_notice = SiteCalendar.build(CHINA, {2027: notice})
    result = placed(at("2026-06-15T10:00"), "1y", ("11mo", "13mo"), calendar=with_notice)
    assert result.due_at == at("2027-06-16T09:00")  # the notice's holiday is respected
    assert not result.provisional


def test_routine_call_in_a_published_year_is_not_provisional() -> None:
    assert not placed(at("2026-03-02T10:00"), "1mo", ("4w", "6w")).provisional


def test_clinical_call_in_unpublished_year_is_never_provisional() -> None:
    # A holiday does not move a clinical call, so guessed holiday data cannot change it.
    assert not placed(at("2027-10-01T10:00"), "24h", ("12h", "36h"), "clinical").provisional


# --- clinical calls ------------------------------------------------------------------------


def test_clinical_call_on_a_holiday_keeps_its_date() -> None:
    result = placed(at("2026-10-01T14:00"), "24h", ("12h", "36h"), "clinical")  # implant, 24h
    assert result.due_at == at("2026-10-02T14:00")


def test_clinical_call_at_night_waits_until_quiet_hours_end_next_morning() -> None:
    result = placed(at("2026-06-02T20:00"), "3h", ("2h", "24h"), "clinical")  # target 23:00
    assert result.due_at == at("2026-06-03T08:00")


def test_clinical_call_in_the_small_hours_waits_until_eight_the_same_day() -> None:
    result = placed(at("2026-06-02T23:30"), "3h", ("2h", "24h"), "clinical")  # target 02:30
    assert result.due_at == at("2026-06-03T08:00")


def test_clinical_call_pushed_past_its_window_by_quiet_hours_is_flagged() -> None:
    result = placed(at("2026-06-02T20:00"), "2h", ("2h", "3h"), "clinical")  # window ends 23:00
    assert result.due_at == at("2026-06-03T08:00")
    assert result.outside_window


def test_leave_quiet_hours_leaves_daytime_alone() -> None:
    assert leave_quiet_hours(at("2026-06-02T13:00"), QUIET, SHANGHAI) == at("2026-06-02T13:00")
    assert leave_quiet_hours(at("2026-06-02T20:59"), QUIET, SHANGHAI) == at("2026-06-02T20:59")
    assert leave_quiet_hours(at("2026-06-02T21:00"), QUIET, SHANGHAI) == at("2026-06-03T08:00")
    assert leave_quiet_hours(at("2026-06-02T08:00"), QUIET, SHANGHAI) == at("2026-06-02T08:00")


# --- time zones and slots --------------------------------------------------------------------


def test_same_local_window_gives_different_instants_in_london_and_shanghai() -> None:
    london = SiteCalendar.build(default_calendar("GB"))
    in_london = placed(
        at("2026-06-02T10:00", LONDON), "1d", ("1d", "3d"), calendar=london, tz=LONDON
    )
    in_shanghai = placed(at("2026-06-02T10:00"), "1d", ("1d", "3d"))
    assert in_london.due_at.astimezone(LONDON).time() == time(10, 0)
    assert in_shanghai.due_at.astimezone(SHANGHAI).time() == time(10, 0)
    assert in_london.due_at.astimezone(UTC) - in_shanghai.due_at.astimezone(UTC) == timedelta(
        hours=7
    )


def test_london_site_uses_uk_bank_holidays() -> None:
    london = SiteCalendar.build(default_calendar("GB"))
    result = placed(at("2026-12-24T10:00", LONDON), "1d", ("1d", "10d"), calendar=london, tz=LONDON)
    assert result.due_at == at(
        "2026-12-29T09:00", LONDON
    )  # Christmas and Boxing Day (Mon 28th) skipped


def test_next_calling_slot_is_now_when_inside_a_window() -> None:
    now = at("2026-06-03T15:00")
    assert next_calling_slot(now, WINDOWS, CN, SHANGHAI) == now


def test_next_calling_slot_converts_from_utc() -> None:
    # 02:00 UTC is 10:00 in Shanghai: inside the morning window.
    assert next_calling_slot(datetime(2026, 6, 3, 2, 0, tzinfo=UTC), WINDOWS, CN, SHANGHAI) == at(
        "2026-06-03T10:00"
    )


def test_next_calling_slot_at_window_end_moves_to_the_next_window() -> None:
    assert next_calling_slot(at("2026-06-03T11:30"), WINDOWS, CN, SHANGHAI) == at(
        "2026-06-03T14:30"
    )


# --- invariants ---------------------------------------------------------------------------------


def _in_calling_window(moment: datetime) -> bool:
    local = moment.astimezone(SHANGHAI).time()
    return any(w.contains(local) for w in WINDOWS)


def _has_working_slot(start: datetime, end: datetime) -> bool:
    """Oracle: does any calling window of a working day overlap [start, end]?"""
    day = start.date()
    while day <= end.date():
        if CN.is_working_day(day):
            for w in WINDOWS:
                slot_start = datetime.combine(day, w.start, SHANGHAI)
                slot_end = datetime.combine(day, w.end, SHANGHAI)
                if max(slot_start, start) < slot_end and max(slot_start, start) <= end:
                    return True
        day += timedelta(days=1)
    return False


anchors = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 31, 23, 59)
).map(lambda d: d.replace(second=0, microsecond=0, tzinfo=SHANGHAI))


@st.composite
def day_windows(draw: st.DrawFn) -> tuple[str, str, str]:
    earliest = draw(st.integers(min_value=0, max_value=400))
    latest = earliest + draw(st.integers(min_value=3, max_value=30))
    offset = draw(st.integers(min_value=earliest, max_value=latest))
    return f"{offset}d", f"{earliest}d", f"{latest}d"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(anchor=anchors, spec=day_windows())
@example(anchor=datetime(2026, 9, 30, 10, 0, tzinfo=SHANGHAI), spec=("1d", "1d", "3d"))
@example(anchor=datetime(2026, 2, 14, 18, 0, tzinfo=SHANGHAI), spec=("3d", "0d", "8d"))
@example(anchor=datetime(2026, 2, 19, 18, 0, tzinfo=SHANGHAI), spec=("314d", "285d", "315d"))
def test_routine_call_lands_in_a_calling_window_of_a_working_day_inside_its_window(
    anchor: datetime, spec: tuple[str, str, str]
) -> None:
    offset, earliest, latest = spec
    times = milestone_times(
        anchor, Duration.parse(offset), Duration.parse(earliest), Duration.parse(latest), SHANGHAI
    )
    result = place(times, "routine", windows=WINDOWS, quiet=QUIET, calendar=CN, tz=SHANGHAI)
    due = result.due_at.astimezone(SHANGHAI)
    assert CN.is_working_day(due.date())
    assert _in_calling_window(due)
    if _has_working_slot(times.window_start, times.window_end):
        # Three days and more nearly always hold working time; only long holidays
        # (Spring Festival, National Day) can swallow a whole window.
        event("placed inside its window")
        assert times.window_start <= due <= times.window_end
        assert not result.outside_window
    else:
        event("window swallowed by a long holiday")
        assert result.outside_window
        assert due > times.window_end
    first, last = sorted((times.target.date(), due.date()))
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    assert result.provisional == any(not CN.is_published(d) for d in days)


@settings(max_examples=300, deadline=None)
@given(anchor=anchors, hours=st.integers(min_value=0, max_value=72))
def test_clinical_call_only_ever_leaves_quiet_hours(anchor: datetime, hours: int) -> None:
    offset = Duration.parse(f"{hours}h")
    times = milestone_times(anchor, offset, offset, Duration.parse(f"{hours + 12}h"), SHANGHAI)
    result = place(times, "clinical", windows=WINDOWS, quiet=QUIET, calendar=CN, tz=SHANGHAI)
    due = result.due_at.astimezone(SHANGHAI)
    target = times.target.astimezone(SHANGHAI)
    assert not QUIET.contains(due.time())
    assert not result.provisional
    if QUIET.contains(target.time()):
        assert due.time() == QUIET.end
        assert timedelta(0) < due - target <= timedelta(hours=11)
    else:
        assert due == target


@pytest.mark.parametrize("year", [2024, 2025, 2026])
def test_no_routine_call_is_placed_on_a_published_holiday(year: int) -> None:
    day = date(year, 1, 1)
    while day.year == year:
        result = placed(at(f"{day.isoformat()}T10:00"), "0d", ("0d", "20d"))
        assert CHINA.is_working_day(result.due_at.date()), day
        day += timedelta(days=7)
