"""Attempts that count: a failed attempt too soon after the previous counted one is recorded, not counted.

DOMAIN.md §4, seed 001: a dropped call is redialled at once. Three failed tries in the same
minute are one try; the unsuccessful limit (不成功回访) counts failed attempts at least the
chain's ``min_gap`` (2 h) apart. SH-DENT calls 10:00-11:30 and 15:30-17:00.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from clinic_data import seed
from clinic_data import task_id as tid
from hypothesis import given, settings
from hypothesis import strategies as st

SH = ZoneInfo("Asia/Shanghai")
FAILED = ("no_answer", "busy", "powered_off", "out_of_service", "cannot_connect", "not_convenient")


@pytest.fixture
def clinic(cli, tmp_path: Path, db_url: str) -> str:  # type: ignore[no-untyped-def]
    """D2: extraction Monday 2026-11-16 10:00 at SH-DENT; its 1-week check is due Monday 23rd 10:00."""
    seed(cli, tmp_path, db_url, [["D2", "李强", "M", "1986-09-03", "13912345602", "SH-DENT"]],
         [["E2", "D2", "SH-DENT", "dental", "extraction", "2026-11-16T10:00", "陈志远"]])
    return db_url


def record(cli, url: str, task: int, outcome: str, now: str, *extra: str, fmt: str = "json",  # type: ignore[no-untyped-def]
           locale: str = "en"):
    result = cli("record", str(task), "--outcome", outcome, "--format", fmt, "--locale", locale, *extra, db=url,
                 now=now, user="zhang.li")
    return json.loads(result.output) if fmt == "json" else result.output


def rows(url: str, task_id: int):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from core.db.engine import session_scope
    from core.db.models import Attempt, Task

    with session_scope(url) as session:
        task = session.get(Task, task_id)
        attempts = session.execute(select(Attempt).where(Attempt.task_id == task_id).order_by(Attempt.id)).scalars()
        return task, [(a.outcome, a.counted) for a in attempts]


def test_three_failed_tries_in_the_same_minute_count_once(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "D2", "check_1w")
    first = record(cli, clinic, t, "no_answer", "2026-11-23T10:20+08:00")
    assert first["counted"] is True and first["task"]["next_attempt_at"] == "2026-11-23T15:30+08:00"
    second = record(cli, clinic, t, "busy", "2026-11-23T10:20:40+08:00")
    third = record(cli, clinic, t, "powered_off", "2026-11-23T10:21+08:00")
    for data in (second, third):
        assert data["counted"] is False
        assert data["previous_failed_at"] == "2026-11-23T10:20+08:00" and data["min_gap"] == "2h"
    # on main this made the follow-up unsuccessful (不成功回访); now it is one failed try
    assert (third["task"]["status"], third["task"]["failed_attempts"], third["task"]["attempts"]) == ("open", 1, 1)
    assert third["task"]["attempts_logged"] == 3
    assert third["task"]["next_attempt_at"] == "2026-11-23T15:30+08:00"  # the retry stays where it was planned
    task, attempts = rows(clinic, t)
    assert attempts == [("no_answer", True), ("busy", False), ("powered_off", False)]
    assert (task.attempts, task.failed_attempts, task.attempts_logged) == (1, 1, 3)

    [listed] = [x for x in json.loads(cli("tasks", "--format", "json", db=clinic).output) if x["id"] == t]
    assert (listed["attempts"], listed["attempts_logged"], listed["failed_attempts"]) == (1, 3, 1)

    later = record(cli, clinic, t, "no_answer", "2026-11-23T15:30+08:00")  # the planned retry counts again
    assert (later["counted"], later["task"]["failed_attempts"], later["task"]["attempts_logged"]) == (True, 2, 4)


def test_record_says_the_attempt_did_not_count_in_the_readers_language(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "D2", "check_1w")
    first = record(cli, clinic, t, "no_answer", "2026-11-23T10:20+08:00", fmt="table")
    assert "not counted" not in first and "不计入" not in first
    en = record(cli, clinic, t, "no_answer", "2026-11-23T10:21+08:00", fmt="table")
    assert ("not counted towards the failed attempts: less than 2h after the counted failed attempt at "
            "2026-11-23T10:20+08:00") in en
    assert "failed 1/3" in en
    zh = record(cli, clinic, t, "busy", "2026-11-23T10:22+08:00", fmt="table", locale="zh_CN")
    assert "本次不计入失败次数：距上一次计入的失败拨打（2026-11-23T10:20+08:00）不足 2h" in zh
    assert "失败 1/3" in zh


def test_the_interactive_call_says_so_too(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    """No answer at 10:20; the patient rings back, asks to be called at 10:40, and does not answer then."""
    t = tid(cli, clinic, "D2", "check_1w")
    record(cli, clinic, t, "no_answer", "2026-11-23T10:20+08:00")
    record(cli, clinic, t, "callback_requested", "2026-11-23T10:25+08:00", "--callback-at", "2026-11-23T10:40")
    now = "2026-11-23T10:40+08:00"
    assert t in json.loads(cli("claim", "--format", "json", db=clinic, now=now, user="zhang.li").output)["claimed"]
    result = cli("call", "--locale", "en", db=clinic, now=now, user="zhang.li", input="no_answer\n")
    assert "not counted towards the failed attempts: less than 2h after the counted failed attempt at " \
           "2026-11-23T10:20+08:00" in result.output
    task, attempts = rows(clinic, t)
    assert attempts == [("no_answer", True), ("callback_requested", True), ("no_answer", False)]
    assert (task.status, task.failed_attempts, task.attempts, task.attempts_logged) == ("open", 1, 2, 3)


def test_the_gap_is_measured_from_the_last_counted_failure(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "D2", "check_1w")
    assert record(cli, clinic, t, "no_answer", "2026-11-23T10:20+08:00")["counted"] is True
    assert record(cli, clinic, t, "no_answer", "2026-11-23T11:30+08:00")["counted"] is False
    # 55 minutes after the uncounted one, but 2 h after the counted one: counts
    assert record(cli, clinic, t, "no_answer", "2026-11-23T12:20+08:00")["counted"] is True  # exactly 2 h: counts
    last = record(cli, clinic, t, "no_answer", "2026-11-23T15:30+08:00")  # 3 h 10 later: the third counted failure
    assert (last["counted"], last["task"]["status"], last["task"]["attempts_logged"]) == (True, "unsuccessful", 4)


def test_only_failures_are_left_uncounted(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    """Reaching the patient a minute after a dropped call is the follow-up done, and counts."""
    t = tid(cli, clinic, "D2", "check_1w")
    record(cli, clinic, t, "no_answer", "2026-11-23T10:20+08:00")
    data = record(cli, clinic, t, "reached", "2026-11-23T10:21+08:00")
    assert (data["counted"], data["task"]["status"], data["task"]["attempts"]) == (True, "completed", 2)


def test_reports_count_every_attempt_and_the_day_counts_agree(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    """docs/metrics.md: attempted = a recorded attempt; avg_attempts_per_reached = all attempts on reached tasks."""
    from core.db import rollups
    from core.db.engine import get_engine

    t = tid(cli, clinic, "D2", "check_1w")
    record(cli, clinic, t, "no_answer", "2026-11-23T10:20+08:00")
    record(cli, clinic, t, "no_answer", "2026-11-23T10:21+08:00")  # not counted
    record(cli, clinic, t, "reached", "2026-11-23T15:30+08:00")
    with get_engine(clinic).connect() as conn:
        assert rollups.verify(conn) == {}
        stored = conn.exec_driver_sql("SELECT SUM(attempted), SUM(reached), SUM(reached_attempts) "
                                      "FROM report_task_days").one()
    assert tuple(stored) == (1, 1, 3)
    report = json.loads(cli("report", "week", "--period", "2026-W48", "--format", "json", db=clinic,
                            now="2026-11-30T09:00+08:00", user="chen.jing").output)
    assert report["figures"]["avg_attempts_per_reached"] == 3.0  # the redial was a call made


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(min_value=0, max_value=300),
                                st.sampled_from([*FAILED, "callback_requested"])), min_size=1, max_size=12))
def test_counted_failures_are_at_least_the_gap_apart_and_every_other_one_is_closer(steps: list) -> None:  # type: ignore[type-arg]
    from core.calls import counts
    from core.protocol import Duration

    gap = Duration(amount=2, unit="h")
    at = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    last: datetime | None = None
    counted_failures: list[datetime] = []
    for minutes, outcome in steps:
        at += timedelta(minutes=minutes)
        ok = counts(outcome, at, last, gap)
        if outcome not in FAILED:
            assert ok
            continue
        if ok:
            counted_failures.append(at)
            last = at
        else:
            assert last is not None and at - last < timedelta(hours=2)
    assert all(b - a >= timedelta(hours=2) for a, b in zip(counted_failures, counted_failures[1:], strict=False))
    # the first failure always counts: a task with attempts has counted ones
    assert not any(o in FAILED for _, o in steps) or counted_failures


def test_the_migration_counts_what_was_recorded_before(db_url: str) -> None:
    """0005: every earlier attempt counted; attempts_logged = the task's attempt rows; day counts unchanged."""
    from alembic import command
    from sqlalchemy import insert, text

    from core.db import rollups
    from core.db.engine import get_engine
    from core.db.migrate import alembic_config, upgrade
    from core.db.models import Episode, Patient
    from core.db.uow import outside

    cfg = alembic_config(db_url)
    with get_engine(db_url).begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0004")
    when = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
    with get_engine(db_url).begin() as conn, outside(conn):  # a database of the release before
        conn.execute(insert(Patient), [{"id": 1, "external_id": "P1", "name": "x", "gender": "F", "site": "SH-DENT"}])
        conn.execute(insert(Episode), [{"id": 1, "external_id": "E1", "patient_id": 1, "site": "SH-DENT",
                                        "specialty": "dental", "procedure": "implant", "trigger": "procedure",
                                        "occurred_at": when, "attributes": {}}])
        conn.execute(text(
            "INSERT INTO tasks (id, episode_id, patient_id, site, specialty, procedure, milestone, purpose, channel, "
            "urgency, due_at, window_start, window_end, target_at, \"offset\", window_earliest, window_latest, "
            "provisional, outside_window, status, max_attempts, attempts, failed_attempts, created_at, updated_at) "
            "VALUES (:id, 1, 1, 'SH-DENT', 'dental', 'implant', :m, 'check', 'phone', 'routine', :t, :t, :t, :t, "
            "'1d', '0d', '1d', false, false, :status, 3, :n, :f, :t, :t)"),
            [{"id": 1, "m": "m1", "t": "2026-11-02 02:00:00", "status": "completed", "n": 2, "f": 1},
             {"id": 2, "m": "m2", "t": "2026-11-02 02:00:00", "status": "open", "n": 0, "f": 0}])
        conn.execute(text("INSERT INTO attempts (id, task_id, at, site, by, outcome) VALUES "
                          "(1, 1, '2026-11-02 02:05:00', 'SH-DENT', 'zhang.li', 'no_answer'), "
                          "(2, 1, '2026-11-02 02:06:00', 'SH-DENT', 'zhang.li', 'reached')"))
        before = conn.exec_driver_sql("SELECT reached_attempts FROM report_task_days").scalar()
    upgrade(db_url)
    with get_engine(db_url).connect() as conn:
        tasks = conn.exec_driver_sql("SELECT id, attempts, attempts_logged FROM tasks ORDER BY id").all()
        counted = conn.exec_driver_sql("SELECT counted FROM attempts ORDER BY id").scalars().all()
        assert rollups.verify(conn) == {}
        assert conn.exec_driver_sql("SELECT reached_attempts FROM report_task_days").scalar() == before == 2
    assert [tuple(r) for r in tasks] == [(1, 2, 2), (2, 0, 0)]
    assert [bool(c) for c in counted] == [True, True]
