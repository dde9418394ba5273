"""The scale benchmark (benchmarks/scale.py) at a small size, and the fast paths it measures.

No wall-clock assertions: a run must finish and every framework result must equal
its hand-written baseline's (the scheduled tasks equal the rows the plain
per-episode ``task_rows`` gives, the worklist equals the indexed query's rows, the
report's figures and lists equal those of hand-written SQL, no claim is doubled).
The property tests hold the scheduling fast path (``shifter``, ``Placer``) to the
reference functions, in zones with DST gaps and folds.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import place

from core.calendar import SiteCalendar, YearNotice, default_calendar
from core.config import TimeRange
from core.placement import Placer, milestone_times, regular_offset, shifter
from core.protocol import Duration

ROOT = Path(__file__).resolve().parents[1]
NUMBER = r"(\d+\.\d+|nan)"
SUMMARY = re.compile(
    rf"^ratios: schedule={NUMBER} worklist={NUMBER} report={NUMBER} claims={NUMBER} cli={NUMBER} import={NUMBER}"
    rf" attempts={NUMBER}$"
)


def load_benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("followup_scale_benchmark", ROOT / "benchmarks" / "scale.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def assert_agrees(data: dict, backend: str) -> None:
    rows = data[backend]["schedule_rows"]
    assert rows["tasks"] == rows["raw"] == rows["created"] >= 3000
    assert rows["only_framework"] == rows["only_raw"] == 0
    worklist = data[backend]["worklist_rows"]
    assert worklist["equal"] and worklist["tasks"] > 0
    report = data[backend]["report_rows"]  # every figure and list equal to the hand-written SQL's
    assert report["equal"] and not report["differ"]
    assert report["due"] > 0 and report["reached"] > 0
    assert report["unreachable"] > 0 and report["suggestions"] > 0 and report["staff"] > 0
    assert data[backend]["setup"]["attempts"] == 6000
    loaded = data[backend]["attempts_load"]  # loaded by core.callhistory: the day counts and counters agree
    assert loaded["attempts"] == 6000 and loaded["day_counts_agree"] and loaded["counters_agree"]
    assert data[backend]["attempts"]["check"]
    claims = data[backend]["claims"]
    assert claims["tasks"] >= 300 and claims["runs"]
    for run in claims["runs"]:  # every drain: all tasks handed out, none twice, no errors
        assert run["tasks"] == claims["tasks"] and run["doubles"] == 0 and run["left"] == 0 and not run["errors"]
    assert data[backend]["record"]["n"] >= 100


def assert_imported(data: dict, backend: str) -> None:
    """The import stored what the raw load of the same rows stores, with the counts it reported."""
    imported = data[backend]["import_rows"]
    assert imported["problems"] == [] and imported["episodes"] >= 500 and imported["patients"] > 0
    assert len(imported["framework_s"]) == len(imported["raw_s"]) == 1


def test_small_benchmark_on_sqlite(tmp_path: Path) -> None:
    bench = load_benchmark()
    lines: list[str] = []
    out = bench.run(["--tasks", "3000", "--attempts", "6000", "--workdir", str(tmp_path), "--repeat", "2",
                     "--claim-tasks", "300", "--claim-rounds", "1", "--records", "100", "--no-cli",
                     "--import-rounds", "1"],
                    emit=lines.append)
    assert out.ok, "\n".join(lines)
    assert_agrees(out.data, "sqlite")
    assert_imported(out.data, "sqlite")
    assert any(line.startswith("import    sqlite ") and " rows/s" in line for line in lines)
    for name in ("schedule", "worklist", "report"):
        assert any(line.startswith(f"{name} ") and " ratio " in line for line in lines), name
    assert any(line.startswith("help ") for line in lines)
    assert SUMMARY.match(lines[-1]), lines[-1]


@pytest.mark.postgres
def test_small_benchmark_on_postgresql(pg_server: str, tmp_path: Path) -> None:
    bench = load_benchmark()
    lines: list[str] = []
    out = bench.run(
        ["--tasks", "3000", "--attempts", "6000", "--pg", pg_server, "--only", "postgresql",
         "--claim-tasks", "300", "--claim-rounds", "1", "--records", "100", "--repeat", "2",
         "--workdir", str(tmp_path), "--no-help", "--no-cli", "--import-rounds", "1"],
        emit=lines.append,
    )
    assert out.ok, "\n".join(lines)
    assert_agrees(out.data, "postgresql")
    for backend in ("sqlite", "postgresql"):  # SQLite is the import's reference, also with --only postgresql
        assert_imported(out.data, backend)
    assert out.data["postgresql"]["import"]["check"]
    assert {r["workers"] for r in out.data["postgresql"]["claims"]["runs"]} == {1, 4, 8}
    assert SUMMARY.match(lines[-1]), lines[-1]


# -- the fast path equals the reference ---------------------------------------------------------
ZONES = [ZoneInfo(z) for z in ("Asia/Shanghai", "Europe/London", "America/New_York", "Australia/Lord_Howe")]
AMOUNTS = {"min": (-600, 6000), "h": (-100, 1000), "d": (-40, 800), "w": (-10, 110), "mo": (-12, 30), "y": (-2, 5)}
durations = st.sampled_from(sorted(AMOUNTS)).flatmap(
    lambda unit: st.integers(*AMOUNTS[unit]).map(lambda amount: Duration(amount=amount, unit=unit))
)
instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31)).map(
    lambda d: d.replace(second=0, microsecond=0, tzinfo=UTC)
)


def same_wall(a: datetime, b: datetime) -> bool:
    fields = ("year", "month", "day", "hour", "minute", "second", "microsecond", "fold")
    return all(getattr(a, f) == getattr(b, f) for f in fields) and a.tzinfo is b.tzinfo


@settings(max_examples=500, deadline=None)
@given(anchor=instants, duration=durations, tz=st.sampled_from(ZONES))
def test_shifter_equals_duration_add_to(anchor: datetime, duration: Duration, tz: ZoneInfo) -> None:
    local = anchor.astimezone(tz)
    expected = duration.add_to(local)
    got_local, got_utc = shifter(duration)(local, anchor, regular_offset(local))
    assert same_wall(got_local, expected)
    assert got_utc.tzinfo is UTC and got_utc.timestamp() == expected.timestamp()


def test_shifter_moves_a_wall_time_out_of_a_dst_gap_like_add_to() -> None:
    tz = ZoneInfo("America/New_York")
    local = datetime(2026, 3, 7, 2, 30, tzinfo=tz)  # the next day at 02:30 does not exist
    anchor = local.astimezone(UTC)
    expected = Duration.parse("1d").add_to(local)
    got_local, got_utc = shifter(Duration.parse("1d"))(local, anchor, regular_offset(local))
    assert same_wall(got_local, expected) and got_local.hour == 3
    assert got_utc.timestamp() == expected.timestamp()


CHINA = default_calendar("CN")
CALENDARS = [
    SiteCalendar.build(CHINA),
    SiteCalendar.build(CHINA, {2027: YearNotice(frozenset({date(2027, 10, 6)}), frozenset({date(2027, 10, 9)}))},
                       closed=[date(2026, 12, 31)], extra_workdays=[date(2026, 10, 11)]),
    SiteCalendar.build(default_calendar("GB")),
]
WINDOW_SETS = [
    [TimeRange.model_validate("09:00-11:30"), TimeRange.model_validate("14:30-17:30")],
    [TimeRange.model_validate("15:30-17:00"), TimeRange.model_validate("10:00-11:30")],  # unsorted
]
QUIET = TimeRange.model_validate("21:00-08:00")
PLACERS: dict[tuple[int, int, str], Placer] = {}


@st.composite
def milestone_windows(draw: st.DrawFn) -> tuple[Duration, Duration, Duration]:
    unit = draw(st.sampled_from(["h", "d", "w", "mo"]))
    earliest = draw(st.integers(min_value=0, max_value=60))
    latest = earliest + draw(st.integers(min_value=0, max_value=20))
    offset = draw(st.integers(min_value=earliest, max_value=latest))
    return tuple(Duration(amount=a, unit=unit) for a in (offset, earliest, latest))  # type: ignore[return-value]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    anchor=instants, spec=milestone_windows(), urgency=st.sampled_from(["routine", "clinical"]),
    calendar=st.integers(0, len(CALENDARS) - 1), windows=st.integers(0, len(WINDOW_SETS) - 1),
    tz=st.sampled_from(ZONES),
)
def test_placer_equals_place(
    anchor: datetime, spec: tuple[Duration, Duration, Duration], urgency: str, calendar: int, windows: int,
    tz: ZoneInfo,
) -> None:
    offset, earliest, latest = spec
    times = milestone_times(anchor, offset, earliest, latest, tz)
    expected = place(times, urgency, windows=WINDOW_SETS[windows], quiet=QUIET, calendar=CALENDARS[calendar], tz=tz)
    key = (calendar, windows, tz.key)
    if key not in PLACERS:  # shared, so the per-day memo is exercised too
        PLACERS[key] = Placer(WINDOW_SETS[windows], QUIET, CALENDARS[calendar], tz)
    got = PLACERS[key].place(times.target, times.window_start, times.window_end, urgency)
    assert got.provisional == expected.provisional and got.outside_window == expected.outside_window
    assert same_wall(got.due_at.astimezone(tz), expected.due_at.astimezone(tz))


def test_calendar_memo_answers_like_the_calendar() -> None:
    site = CALENDARS[1]
    fresh = SiteCalendar.build(CHINA, site.notices, site.closed, site.extra_workdays)
    day = date(2026, 9, 1)
    for _ in range(500):
        assert site.is_working_day(day) == fresh._is_working_day(day)
        assert site.is_working_day(day) == site.is_working_day(day)  # memoised answer
        assert site.is_published(day) == (day.year in site.notices or CHINA.is_published(day))
        day += timedelta(days=1)


# -- what scheduling shares between tasks, episodes and sites --------------------------------------
END_UNITS = {"d": (-40, 800), "w": (-10, 110), "mo": (-12, 30), "y": (-2, 5)}
calendar_durations = st.sampled_from(sorted(END_UNITS)).flatmap(
    lambda unit: st.integers(*END_UNITS[unit]).map(lambda amount: Duration(amount=amount, unit=unit))
)
# Santiago and Havana skip the hour after midnight, Lord Howe half an hour at 02:00.
GAP_ZONES = ZONES + [ZoneInfo("America/Santiago"), ZoneInfo("America/Havana")]


@settings(max_examples=500, deadline=None)
@given(anchor=instants, duration=calendar_durations, tz=st.sampled_from(GAP_ZONES),
       minutes=st.integers(-1440, 1440))
def test_a_window_end_remembered_per_day_equals_the_reference(
    anchor: datetime, duration: Duration, tz: ZoneInfo, minutes: int
) -> None:
    """The shared end-of-day shifter answers from its memo for every anchor of a local day it met
    (another example, or ``minutes`` away on the same day): the same instant as the reference."""
    from core.placement import _shifter

    shift = shifter(duration, to_end_of_day=True)
    assert shift is shifter(duration, to_end_of_day=True)  # one per duration, memo included
    other = anchor + timedelta(minutes=minutes)
    for moment in (anchor, other, anchor):
        local = moment.astimezone(tz)
        expected = milestone_times(moment, duration, duration, duration, tz).window_end
        got_local, got_utc = shift(local, moment, regular_offset(local))
        fresh = _shifter(duration.amount, duration.unit, True)(local, moment, regular_offset(local))
        assert (got_local, got_utc) == fresh and same_wall(got_local, fresh[0])
        assert got_utc.tzinfo is UTC and got_utc.timestamp() == expected.timestamp()


def test_a_window_end_after_a_gap_at_midnight_is_that_day() -> None:
    """Santiago moves clocks from 00:00 to 01:00 on 6 September 2026: a day offset landing in the gap
    moves forward within the day, and the window still ends at the end of that day."""
    tz = ZoneInfo("America/Santiago")
    shift = shifter(Duration.parse("1d"), to_end_of_day=True)
    for local in (datetime(2026, 9, 5, 0, 30, tzinfo=tz), datetime(2026, 9, 5, 15, 0, tzinfo=tz)):
        anchor = local.astimezone(UTC)
        got_local, got_utc = shift(local, anchor, regular_offset(local))
        assert (got_local.date(), got_local.hour, got_local.minute) == (date(2026, 9, 6), 23, 59)
        expected = milestone_times(anchor, *(Duration.parse("1d"),) * 3, tz).window_end
        assert got_utc.timestamp() == expected.timestamp()


def test_sites_placing_alike_share_a_placer_and_keep_their_own_closed_days() -> None:
    """One placer (and its per-day memo) for the sites with the same calling windows, hours, zone and
    calendar; a site closed on a day places nothing on it even though its twin calls that day."""
    import dataclasses

    from core.config import load_config
    from core.planner import planner
    from core.vocab import Urgency

    config = load_config(ROOT / "config" / "chain.yaml")
    base = config.sites["BJ-HOSP"]
    day = date(2026, 10, 13)
    assert base.calendar(config).is_working_day(day)
    twin = dataclasses.replace(base, code="BJ-TWIN", _calendar=None)
    shut = dataclasses.replace(base, code="BJ-SHUT", closed_days=[day], _calendar=None)
    for site in (twin, shut):
        config.sites[site.code] = site
    assert planner(config, twin).placer is planner(config, base).placer
    assert planner(config, shut).placer is not planner(config, base).placer
    assert planner(config, "SH-DENT").placer is not planner(config, base).placer  # its own windows
    tz = base.timezone
    target = datetime.combine(day, datetime.min.time().replace(hour=10), tz)
    end = target + timedelta(days=5)
    for site, due_day in ((base, day), (twin, day), (shut, day + timedelta(days=1))):
        due = planner(config, site).placer.place_parts(target, target, end, Urgency.ROUTINE)[0]
        assert due.date() == due_day, site.code


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(anchor=instants, preferred=st.sampled_from([None, "18:00-20:00", "12:00-14:00", "07:00-08:30"]),
       dnc=st.booleans())
def test_batch_rows_equal_the_planner_task_by_task(anchor: datetime, preferred: str | None, dnc: bool) -> None:
    """Every task the batch path makes (shared shifts, placers and memos; reminders before their event;
    patients with their own calling time) has the times, flags and status ``Planner.plan`` gives it."""
    import json

    from core.config import load_config
    from core.planner import Timing, planner
    from core.plugins import get_plugins
    from core.scheduling import COLUMNS, EXPIRY_GRACE, Protocols, _batch_rows, _preferred, applies
    from core.vocab import TaskStatus

    config = load_config(ROOT / "config" / "chain.yaml")
    plugins = get_plugins()
    protocols = Protocols(config, plugins)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    episodes, expected = [], {}
    for site in config.sites.values():
        for specialty in site.specialties:
            for procedure in plugins.specialty(specialty).procedures:
                episode_id = len(episodes) + 1
                episodes.append((episode_id, site.code, specialty, procedure.code, 7, anchor, dnc, json.dumps({}),
                                 f"E{episode_id}", "active", procedure.trigger, preferred))
                for ms in protocols.milestones(site, specialty, procedure.code):
                    if not applies(ms, {}):
                        continue
                    plan = planner(config, site).plan(Timing.of(ms), anchor, preferred=_preferred(preferred))
                    status = (TaskStatus.SUPPRESSED if dnc else TaskStatus.EXPIRED
                              if plan.window_end < now - EXPIRY_GRACE else TaskStatus.OPEN)
                    expected[episode_id, ms.key] = (plan.due_at, plan.due_at, plan.window_start, plan.window_end,
                                                    plan.target_at, plan.provisional, plan.outside_window, status)
    out = _batch_rows(config, protocols, lambda moment: moment, episodes, set(), now)
    assert not out.problems and len(out.rows) == len(expected) > 50
    milestone = COLUMNS.index("milestone")
    for row in out.rows:
        assert row[2:10] == expected[row[0], row[milestone]], row[milestone]
    assert out.provisional == sum(1 for row in out.rows if row[7] and row[9] == TaskStatus.OPEN)
    assert out.expired == sum(1 for row in out.rows if row[9] == TaskStatus.EXPIRED)
    assert out.suppressed == sum(1 for row in out.rows if row[9] == TaskStatus.SUPPRESSED)


@settings(max_examples=500, deadline=None)
@given(moments=st.lists(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31),
                                     timezones=st.sampled_from(GAP_ZONES + [UTC])), min_size=1, max_size=20))
def test_sqlite_text_from_its_memos_is_what_the_column_stores(moments: list[datetime]) -> None:
    """The batch path's SQLite instants (a memo of dates and one of times of day) are the text
    ``UTCDateTime`` binds, for any aware instant in any zone, met once or again."""
    from sqlalchemy.dialects import sqlite

    from core.db.models import Task, utc_text

    dialect = sqlite.dialect()
    bind = Task.__table__.c.due_at.type.dialect_impl(dialect).bind_processor(dialect)
    text = utc_text()
    for moment in moments + moments:
        assert text(moment) == bind(moment)
    with pytest.raises(ValueError):
        text(datetime(2026, 1, 1))


def test_cli_ratios_compare_each_round_with_its_own_floor() -> None:
    """benchmarks/cli.py: each command against the floor of its own round (the mean of the runs before and
    after it); a floor that moves between rounds moves the command with it, not the ratio."""
    from benchmarks import cli

    times = {"floor": [0.30, 0.40, 0.50], cli.AFTER: [0.30, 0.40, 0.70], "script": [0.45, 0.48, 0.90]}
    lines, ratios = cli.report(times)
    assert ratios == {"script": pytest.approx(1.5)}  # rounds: 1.5, 1.2, 1.5 (the medians' ratio: 1.2)
    assert lines[1].startswith("cli script    0.480 s CPU vs floor 0.400 s = 1.50x  (ok")
