"""Call history loaded in bulk (core/callhistory.py): the same rules as recorded calls, the reports' day
counts and the tasks' counters equal a recount afterwards (``db recount --check``), and a bad row
stops the whole load with nothing written. Both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from clinic_data import seed
from hypothesis import given, settings
from hypothesis import strategies as st

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=SH)


@pytest.fixture
def clinic(cli, tmp_path: Path, db_url: str) -> str:  # type: ignore[no-untyped-def]
    """Six patients treated in September at three sites: their first follow-ups are due by now."""
    seed(cli, tmp_path, db_url, [
        ["D1", "王芳", "F", "1985-03-12", "13912345601", "SH-DENT"],
        ["D2", "李强", "M", "1986-09-03", "13912345602", "SH-DENT"],
        ["D3", "赵敏", "F", "1990-01-20", "13912345603", "SH-DENT"],
        ["A1", "朱浩", "M", "1992-09-29", "15612345614", "SH-AES"],
        ["A2", "孙丽", "F", "1994-05-02", "15612345615", "SH-AES"],
        ["H1", "周杰", "M", "1970-07-07", "13712345616", "BJ-HOSP"],
    ], [
        ["E1", "D1", "SH-DENT", "dental", "extraction", "2026-09-14T10:00", "陈志远"],
        ["E2", "D2", "SH-DENT", "dental", "extraction", "2026-09-15T10:00", "陈志远"],
        ["E3", "D3", "SH-DENT", "dental", "implant", "2026-09-16T11:00", "陈志远"],
        ["E4", "A1", "SH-AES", "hair", "consultation", "2026-09-20T16:00", "邓涛"],
        ["E5", "A2", "SH-AES", "aesthetic", "double_eyelid", "2026-09-21T15:00", "邓涛"],
        ["E6", "H1", "BJ-HOSP", "inpatient", "discharge", "2026-09-22T11:00", "刘医生"],
    ], now="2026-09-01T08:00+08:00")
    return db_url


def open_tasks(url: str) -> list[tuple[int, datetime, str, str, str, str, int, str]]:
    """(id, due_at, site, specialty, procedure, milestone, max_attempts, trigger): open tasks due a day before NOW."""
    from sqlalchemy import select

    from core.db.engine import session_scope
    from core.db.models import Task

    with session_scope(url) as session:
        rows = session.execute(
            select(Task.id, Task.due_at, Task.site, Task.specialty, Task.procedure, Task.milestone, Task.max_attempts,
                   Task.trigger)
            .where(Task.status == "open", Task.due_at < NOW - timedelta(days=1), Task.channel == "phone")
            .order_by(Task.id)).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def caller(site: str) -> str:
    from core.config import load_config

    config = load_config(Path(__file__).resolve().parents[1] / "config" / "chain.yaml")
    return next(m.username for m in config.model.staff if m.role == "coordinator" and site in (m.sites or [site]))


def history(url: str, plugins) -> tuple[list, list[int], dict[int, str]]:  # type: ignore[no-untyped-def]
    """Calls on every open task due by now, each task's story a different one; the statuses they lead to."""
    from core.callhistory import PastCall
    from core.vocab import TREATED_TRIGGERS

    calls, given_up, expected = [], [], {}
    for n, (task_id, due, site, spec, proc, milestone, max_attempts, trigger) in enumerate(open_tasks(url)):
        by = caller(site)
        at = due + timedelta(minutes=5)
        story = n % 5
        if story == 0:  # two failures, then reached with an answer
            asked = plugins.questions(spec, proc, milestone)
            question = asked.get("overall_satisfaction")
            fits = question is not None and (not question.treated_only or trigger in TREATED_TRIGGERS)
            answers = {"overall_satisfaction": "5"} if fits else {}
            calls += [PastCall(task_id, at, by, "no_answer"), PastCall(task_id, at + timedelta(hours=5), by, "busy"),
                      PastCall(task_id, at + timedelta(days=1), by, "reached", answers)]
            expected[task_id] = "completed"
        elif story == 1:  # failures up to the limit: unsuccessful
            calls += [PastCall(task_id, at + timedelta(days=i), by, "no_answer") for i in range(max_attempts)]
            expected[task_id] = "unsuccessful"
        elif story == 2:  # one failure and a redial a minute later (not counted): still open
            calls += [PastCall(task_id, at, by, "no_answer"), PastCall(task_id, at + timedelta(minutes=1), by, "busy")]
            expected[task_id] = "open"
        elif story == 3:  # wrong number
            calls.append(PastCall(task_id, at, by, "wrong_number"))
            expected[task_id] = "wrong_number"
        else:  # one failure, then given up in the spreadsheet
            calls.append(PastCall(task_id, at, by, "not_convenient"))
            given_up.append(task_id)
            expected[task_id] = "unsuccessful"
    return calls, given_up, expected


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's writer thread takes the attempts a few at a time: many statements, each with its ids."""
    from core.callhistory import _Writer

    monkeypatch.setattr(_Writer, "FIRST", 1)
    monkeypatch.setattr(_Writer, "CHUNK", 3)


def test_loaded_history_counts_like_recorded_calls(cli, clinic: str, plugins, config, small_chunks) -> None:  # type: ignore[no-untyped-def]
    import sys

    from sqlalchemy import func, select

    from core.callhistory import load_attempts
    from core.db import counters, rollups
    from core.db.engine import get_engine, session_scope
    from core.db.models import Answer, Attempt, AuditEntry, Task

    calls, given_up, expected = history(clinic, plugins)
    assert len(expected) >= 5
    switch = sys.getswitchinterval()
    day_rows = _day_tables(clinic)
    with session_scope(clinic) as session:
        result = load_attempts(session, config, plugins, calls, user="system", now=NOW, given_up=given_up)
    assert result.attempts == len(calls) and result.tasks == len(expected)
    assert sys.getswitchinterval() == switch  # SQLite's writer thread lowered it meanwhile
    # the load's day rows appended beside the day tables (their parts), the day tables as they were
    assert _day_tables(clinic) == day_rows
    with get_engine(clinic).connect() as conn:
        assert all(conn.exec_driver_sql(f"SELECT count(*) FROM {r.parts}").scalar_one() for r in rollups.ROLLUPS)
    with session_scope(clinic) as session:
        # every answer on its own call: the calls' ids as the load gave them, chunk after chunk
        answered = session.execute(select(Attempt.task_id, Attempt.outcome, Answer.task_id)
                                   .join(Answer, Answer.attempt_id == Attempt.id)).all()
        assert answered and all(call_task == task and outcome == "reached" for call_task, outcome, task in answered)
        tasks = {t.id: t for t in session.execute(select(Task).where(Task.id.in_(expected))).scalars()}
        assert {i: t.status for i, t in tasks.items()} == expected
        for task_id, task in tasks.items():
            query = select(Attempt).where(Attempt.task_id == task_id).order_by(Attempt.at)
            rows = session.execute(query).scalars().all()
            assert task.attempts_logged == len(rows)
            if expected[task_id] == "open":  # the redial a minute later does not count; the retry is planned
                assert [a.counted for a in rows] == [True, False] and task.attempts == task.failed_attempts == 1
                assert task.next_attempt_at > rows[0].at
            elif expected[task_id] != "open":
                assert task.completed_at == rows[-1].at
        assert session.scalar(select(func.count()).select_from(Answer)) == result.answers
        audits = session.execute(select(AuditEntry).where(AuditEntry.action == "history")).scalars().all()
        assert len(audits) == 1 and audits[0].detail["attempts"] == len(calls)  # one set-based row
    with get_engine(clinic).connect() as conn:
        assert rollups.verify(conn) == {}
        assert counters.mismatches(conn) == []
    cli("db", "recount", "--check", db=clinic)
    # the triggers are back: a call recorded afterwards is counted as before
    open_id = next(i for i, s in expected.items() if s == "open")
    cli("record", str(open_id), "--outcome", "reached", db=clinic, now=NOW.isoformat(),
        user=caller(tasks[open_id].site))
    cli("db", "recount", "--check", db=clinic)


def test_a_bad_row_stops_the_load_with_nothing_written(cli, clinic: str, plugins, config) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from core.callhistory import PastCall, load_attempts
    from core.db.engine import session_scope
    from core.db.models import Answer, Attempt, Task
    from core.importing import ImportFailed

    calls, given_up, _ = history(clinic, plugins)
    first = calls[0]
    by = first.by
    bad = [
        PastCall(999999, first.at, by, "no_answer"),                                   # no such task
        PastCall(first.task_id, NOW + timedelta(hours=1), by, "no_answer"),           # in the future
        PastCall(first.task_id, first.at, by, "hung_up"),                             # unknown outcome
        PastCall(first.task_id, first.at, by, "busy", {"overall_satisfaction": "5"}),  # answers when not reached
        PastCall(first.task_id, first.at, "nobody", "busy"),                          # not on the staff list
    ]
    rows = calls + bad
    with session_scope(clinic) as session:
        before = {t.id: (t.status, t.attempts) for t in session.execute(select(Task)).scalars()}
    with pytest.raises(ImportFailed) as failed:
        with session_scope(clinic) as session:
            load_attempts(session, config, plugins, rows, user="system", now=NOW, given_up=given_up)
    problems = failed.value.problems
    n = len(calls)
    assert sorted({p.row for p in problems}) == [n + 1, n + 2, n + 3, n + 4, n + 5]  # every bad row, no good one
    of = {p.row: p for p in reversed(problems)}  # each row's first problem
    assert "there is no follow-up task 999999" in of[n + 1].render("en")
    assert of[n + 1].render("zh_CN").startswith(f"第 {n + 1} 行")
    assert "not in the past" in of[n + 2].render("en") and of[n + 3].column == "outcome"
    assert of[n + 4].column == "answers" and of[n + 5].column == "by"
    with session_scope(clinic) as session:
        assert session.scalar(select(func.count()).select_from(Attempt)) == 0
        assert session.scalar(select(func.count()).select_from(Answer)) == 0
        assert {t.id: (t.status, t.attempts) for t in session.execute(select(Task)).scalars()} == before
    # a call after the one that closed its task, and a task already closed, are refused too
    with session_scope(clinic) as session:
        load_attempts(session, config, plugins, [PastCall(first.task_id, first.at, by, "refused")], user="system",
                      now=NOW)
    with pytest.raises(ImportFailed) as failed:
        with session_scope(clinic) as session:
            later = PastCall(first.task_id, first.at + timedelta(hours=1), by, "busy")
            load_attempts(session, config, plugins, [later], user="system", now=NOW)
    assert "already closed (refused)" in str(failed.value)
    second = next(c for c in calls if c.task_id != first.task_id)
    with pytest.raises(ImportFailed) as failed:
        with session_scope(clinic) as session:
            load_attempts(session, config, plugins, [
                PastCall(second.task_id, second.at, second.by, "refused"),
                PastCall(second.task_id, second.at + timedelta(hours=1), second.by, "reached"),
            ], user="system", now=NOW)
    assert "was closed by the call on row 1" in str(failed.value)
    cli("db", "recount", "--check", db=clinic)


def test_loading_history_is_for_admins(clinic: str, plugins, config) -> None:  # type: ignore[no-untyped-def]
    from core.access import AccessDenied
    from core.callhistory import load_attempts
    from core.db.engine import session_scope

    calls, _, _ = history(clinic, plugins)
    with pytest.raises(AccessDenied), session_scope(clinic) as session:
        load_attempts(session, config, plugins, calls, user=calls[0].by, now=NOW)


def test_calls_out_of_order_are_sorted_and_one_without_timezone_is_a_located_problem(  # type: ignore[no-untyped-def]
        cli, clinic: str, plugins, config) -> None:
    from core.callhistory import PastCall, load_attempts
    from core.db.engine import session_scope
    from core.importing import ImportFailed

    task_id, due, site, *_ = open_tasks(clinic)[0]
    by = caller(site)
    at = due + timedelta(minutes=5)
    naive = PastCall(task_id, (at + timedelta(hours=1)).replace(tzinfo=None), by, "busy", row=3)
    with pytest.raises(ImportFailed) as failed, session_scope(clinic) as session:
        load_attempts(session, config, plugins, [PastCall(task_id, at + timedelta(days=1), by, "refused", row=2),
                                                 naive, PastCall(task_id, at, by, "no_answer", row=4)],
                      user="system", now=NOW)
    assert [(p.row, p.column) for p in failed.value.problems] == [(3, "at")]
    with session_scope(clinic) as session:  # the refusal came last in time although first in the file
        result = load_attempts(session, config, plugins, [PastCall(task_id, at + timedelta(days=1), by, "refused"),
                                                          PastCall(task_id, at, by, "no_answer")],
                               user="system", now=NOW)
    assert result.statuses == {"refused": 1}
    cli("db", "recount", "--check", db=clinic)


def test_day_counts_agree_when_the_chains_day_starts_at_a_half_hour(cli, clinic: str, plugins, config) -> None:  # type: ignore[no-untyped-def]
    """A day is looked up by an instant's hour, or by its minute when the offset is not whole hours."""
    from core.callhistory import load_attempts
    from core.db import rollups
    from core.db.engine import get_engine, session_scope

    with get_engine(clinic).begin() as conn:
        assert rollups.set_offset(conn, 330)  # UTC+5:30: the day rows recounted at that offset
    calls, given_up, _ = history(clinic, plugins)
    # calls around the day's edge at that offset (18:30 UTC) land on both sides of it
    calls = [c.__class__(c.task_id, c.at.replace(hour=2, minute=29 + i % 3), c.by, c.outcome, c.answers)
             for i, c in enumerate(calls)]
    with session_scope(clinic) as session:
        load_attempts(session, config, plugins, calls, user="system", now=NOW, given_up=given_up)
    with get_engine(clinic).connect() as conn:
        assert rollups.verify(conn) == {}


@settings(max_examples=300, deadline=None)
@given(moments=st.lists(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31),
                                     timezones=st.sampled_from([UTC, SH, ZoneInfo("America/New_York"),
                                                                ZoneInfo("Asia/Kathmandu")])),
                        min_size=1, max_size=20))
def test_a_calls_instant_is_the_text_the_column_stores(moments: list[datetime]) -> None:
    """A loaded call's instant, made from memos of dates and times of day, is the text ``UTCDateTime`` binds on
    SQLite and the UTC instant PostgreSQL's ``COPY`` reads into its timestamp column, met once or again."""
    from sqlalchemy.dialects import sqlite

    from core.db.models import Attempt, utc_text

    dialect = sqlite.dialect()
    bind = Attempt.__table__.c.at.type.dialect_impl(dialect).bind_processor(dialect)
    text = utc_text()
    for moment in moments + moments:
        assert text(moment) == bind(moment)
        assert datetime.fromisoformat(text(moment)) == moment.astimezone(UTC).replace(tzinfo=None)


def _day_tables(url: str) -> list[list[tuple]]:  # type: ignore[type-arg]
    from core.db import rollups
    from core.db.engine import get_engine

    with get_engine(url).connect() as conn:
        return [[tuple(row) for row in conn.exec_driver_sql(f"SELECT * FROM {r.table} ORDER BY 1, 2, 3, 4")]
                for r in rollups.ROLLUPS]


def _call_on(conn, task_id: int, site: str, at: datetime) -> None:  # type: ignore[no-untyped-def]
    """A call inserted as any writer's SQL would (the write guard looks away): the triggers decide its count."""
    from sqlalchemy import insert

    from core.db.models import Attempt
    from core.db.uow import outside

    with outside(conn):
        conn.execute(insert(Attempt), [{"task_id": task_id, "at": at, "site": site, "by": "someone",
                                        "outcome": "no_answer", "channel": "phone"}])


def _calls_counted(conn) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    return int(conn.execute(text("SELECT COALESCE(SUM(attempts), 0) FROM report_call_days")).scalar_one())


def test_a_load_holds_back_only_its_own_counting(clinic: str) -> None:
    """While a load writes, the triggers stand aside for its own transaction only (core.db.rollups.held_back):
    the calls it writes meanwhile are counted by the load (here: none, so they are missing from the day rows);
    another writer's call meanwhile is counted by the triggers (PostgreSQL; SQLite has one writer at a time);
    and once the load has written, a call in the same transaction is counted again."""
    from core.db import rollups
    from core.db.engine import get_engine

    (task_id, due, site, *_), (other, _, other_site, *_) = open_tasks(clinic)[:2]
    engine = get_engine(clinic)
    with engine.connect() as conn:
        tx = conn.begin()
        before = _calls_counted(conn)
        with rollups.held_back(conn, rollups.DayCounts(rollups.offset(conn))):
            _call_on(conn, task_id, site, due)
            assert _calls_counted(conn) == before  # not counted by the triggers: the load counts its own
            if engine.dialect.name == "postgresql":
                with engine.begin() as writer:  # another writer meanwhile
                    _call_on(writer, other, other_site, due)
                with engine.connect() as reader:
                    assert _calls_counted(reader) == before + 1
                    assert rollups.verify(reader) == {}
        _call_on(conn, task_id, site, due + timedelta(hours=1))  # after the load's rows: the triggers again
        counted = _calls_counted(conn)
        assert counted == before + 1 + (engine.dialect.name == "postgresql")
        assert set(rollups.verify(conn)) == {rollups.CALLS.table}  # only the call held back is missing
        tx.rollback()
    with engine.connect() as conn:
        assert rollups.verify(conn) == {}


def test_a_refused_load_leaves_its_transaction_as_it_was(cli, clinic: str, plugins, config, small_chunks) -> None:  # type: ignore[no-untyped-def]
    """The calls go into the database while they are checked (PostgreSQL's COPY, SQLite's writer thread a
    chunk at a time): a caller that catches the problems and goes on in the same transaction finds none
    of them written, and can load again."""
    from sqlalchemy import func, select

    from core.callhistory import PastCall, load_attempts
    from core.db.engine import session_scope
    from core.db.models import Attempt
    from core.importing import ImportFailed

    calls, given_up, _ = history(clinic, plugins)
    late = PastCall(calls[-1].task_id, NOW + timedelta(days=1), calls[-1].by, "no_answer")  # the last row
    with session_scope(clinic) as session:
        with pytest.raises(ImportFailed) as failed:
            load_attempts(session, config, plugins, [*calls, late], user="system", now=NOW, given_up=given_up)
        assert {p.row for p in failed.value.problems} == {len(calls) + 1}
        assert session.scalar(select(func.count()).select_from(Attempt)) == 0
        result = load_attempts(session, config, plugins, calls, user="system", now=NOW, given_up=given_up)
        assert session.scalar(select(func.count()).select_from(Attempt)) == result.attempts == len(calls)
    cli("db", "recount", "--check", db=clinic)


def test_a_statement_failing_midway_fails_the_load_with_nothing_written(clinic: str, plugins, config,  # type: ignore[no-untyped-def]
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A statement of the load that fails fails it with nothing written; SQLite runs the statements in a
    thread: the error comes back to the caller's thread and those queued after it are not run."""
    import sys

    from sqlalchemy import func, select
    from sqlalchemy.exc import DBAPIError

    import core.callhistory as callhistory
    from core.db.engine import session_scope
    from core.db.models import Attempt

    write = callhistory._write

    def failing(conn, plan, now, ids, meanwhile, writer=None):  # type: ignore[no-untyped-def]
        (writer or conn).exec_driver_sql("UPDATE no_such_table SET x = 1")  # SQLite: queued to the thread
        return write(conn, plan, now, ids, meanwhile, writer)

    monkeypatch.setattr(callhistory, "_write", failing)
    calls, given_up, _ = history(clinic, plugins)
    switch = sys.getswitchinterval()
    with session_scope(clinic) as session, pytest.raises(DBAPIError, match="no_such_table"):
        callhistory.load_attempts(session, config, plugins, calls, user="system", now=NOW, given_up=given_up)
    assert sys.getswitchinterval() == switch
    with session_scope(clinic) as session:
        assert session.scalar(select(func.count()).select_from(Attempt)) == 0
