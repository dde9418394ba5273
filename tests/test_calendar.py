"""Working days (DOMAIN.md §3, DESIGN.md §5): published China data, guessed years, site changes.

The facts below are the State Council's 2026 notice as shipped in chinesecalendar 1.11.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.calendar import (
    ChinaCalendar,
    HolidaysCalendar,
    SiteCalendar,
    YearNotice,
    default_calendar,
)


@pytest.fixture(scope="module")
def china() -> ChinaCalendar:
    return ChinaCalendar()


def test_2026_is_published_and_2027_is_not(china: ChinaCalendar) -> None:
    assert china.is_published(date(2026, 12, 31))
    assert not china.is_published(date(2027, 1, 4))


def test_published_until_is_the_last_day_of_a_published_year(china: ChinaCalendar) -> None:
    until = china.published_until()
    assert (until.month, until.day) == (12, 31)
    assert china.is_published(until)
    assert not china.is_published(until + timedelta(days=1))


@pytest.mark.parametrize("day", [date(2026, 2, 15), date(2026, 2, 17), date(2026, 2, 23)])
def test_spring_festival_2026_is_a_holiday(china: ChinaCalendar, day: date) -> None:
    assert not china.is_working_day(day)


@pytest.mark.parametrize(
    "day",
    [date(2026, 2, 14), date(2026, 2, 28), date(2026, 9, 20), date(2026, 10, 10), date(2026, 5, 9)],
)
def test_make_up_weekend_days_2026_are_working_days(china: ChinaCalendar, day: date) -> None:
    assert day.weekday() >= 5
    assert china.is_working_day(day)


@pytest.mark.parametrize("day", [date(2026, 10, d) for d in range(1, 8)])
def test_national_day_week_2026_is_a_holiday(china: ChinaCalendar, day: date) -> None:
    assert not china.is_working_day(day)


def test_ordinary_days_2026(china: ChinaCalendar) -> None:
    assert china.is_working_day(date(2026, 10, 8))  # Thursday after National Day
    assert not china.is_working_day(date(2026, 10, 11))  # plain Sunday


def test_an_unpublished_year_is_answered_from_guessed_data_without_crashing(
    china: ChinaCalendar,
) -> None:
    assert not china.is_working_day(date(2027, 10, 1))  # National Day, whatever the notice says
    assert china.is_working_day(date(2027, 6, 15))  # a plain Tuesday
    assert not china.is_working_day(date(2027, 6, 13))  # a plain Sunday


def test_default_calendar_is_china_for_cn_and_holidays_elsewhere() -> None:
    assert isinstance(default_calendar("cn"), ChinaCalendar)
    uk = default_calendar("GB")
    assert isinstance(uk, HolidaysCalendar)
    assert uk.is_published(date(2030, 1, 1))
    assert not uk.is_working_day(date(2026, 12, 25))
    assert uk.is_working_day(date(2026, 12, 29))


def test_site_closure_day_is_not_a_working_day(china: ChinaCalendar) -> None:
    site = SiteCalendar.build(china, closed=[date(2026, 12, 31)])
    assert china.is_working_day(date(2026, 12, 31))
    assert not site.is_working_day(date(2026, 12, 31))


def test_site_extra_workday_is_a_working_day(china: ChinaCalendar) -> None:
    site = SiteCalendar.build(china, extra_workdays=[date(2026, 10, 11)])
    assert site.is_working_day(date(2026, 10, 11))


def test_year_notice_decides_holidays_and_make_up_days_of_an_unpublished_year(
    china: ChinaCalendar,
) -> None:
    notice = YearNotice(
        holidays=frozenset({date(2027, 10, 6), date(2027, 10, 7)}),
        workdays=frozenset({date(2027, 10, 9)}),
    )
    site = SiteCalendar.build(china, {2027: notice})
    assert not site.is_working_day(date(2027, 10, 6))  # Wednesday, a holiday by notice
    assert site.is_working_day(date(2027, 10, 9))  # Saturday, a make-up workday by notice
    assert site.is_working_day(date(2027, 6, 15))  # not in the notice: a weekday works
    assert not site.is_working_day(date(2027, 6, 13))  # ... and a Sunday does not
    assert site.is_published(date(2027, 10, 9))
    assert not site.is_published(date(2028, 1, 3))


@settings(max_examples=60)
@given(st.sampled_from(["CN", "GB", "US", "DE"]), st.dates(min_value=date(2027, 1, 1), max_value=date(2031, 12, 31)))
def test_guessed_days_come_back_from_the_cache_as_holidays_gives_them(country: str, day: date) -> None:
    """The days off a command reads from the per-user cache are ``holidays``' own answers, day by day."""
    import holidays

    from core import calendar

    expected = bool(holidays.country_holidays(country).is_working_day(day))
    calendar._days_off.cache_clear()
    assert calendar._guessed_working_day(country, day) is expected  # computed (and stored)
    calendar._days_off.cache_clear()
    assert calendar._guessed_working_day(country, day) is expected  # read back from the cache


def test_a_command_with_the_days_off_in_its_cache_does_not_import_holidays(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The package costs a tenth of a second to import: asked once, not again in every command."""
    import os
    import subprocess
    import sys

    probe = ("import sys\nfrom datetime import date\nfrom core.calendar import default_calendar\n"
             "cn = default_calendar('CN')\n"
             "print(cn.is_working_day(date(2030, 10, 1)), cn.is_working_day(date(2030, 10, 9)),"
             " 'holidays' in sys.modules)")
    env = {**os.environ, "FOLLOWUP_CACHE_DIR": str(tmp_path / "cache")}
    first = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    again = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert first.stdout.split() == ["False", "True", "True"]  # National Day (guessed), an ordinary Wednesday
    assert again.stdout.split() == ["False", "True", "False"]
    off = subprocess.run([sys.executable, "-c", probe], env={**env, "FOLLOWUP_CACHE_DIR": "off"},
                         capture_output=True, text=True, check=True)
    assert off.stdout.split() == ["False", "True", "True"]
