"""The reports' per-day counts (core/db/rollups.py) always equal a recount, and reports read from
them give exactly what counting the rows gives."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, text
from test_migrations import _to
from test_reports import build, report_json

from core.db import rollups
from core.db.engine import get_engine
from core.db.migrate import set_day_offset
from core.db.models import Answer, Attempt, Episode, Patient, Task
from core.db.uow import outside

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _verify(url: str) -> dict:  # type: ignore[type-arg]
    with get_engine(url).connect() as conn:
        return rollups.verify(conn)


def _count_rows(url: str) -> None:
    """Make every report count from the rows: day counts at an offset no period starts at."""
    with get_engine(url).begin() as conn:
        conn.execute(text("UPDATE report_settings SET offset_minutes = 7 WHERE id = 1"))


def _figures(report: dict) -> dict:  # type: ignore[type-arg]
    keep = ("figures", "previous", "delta", "satisfaction", "sales", "coordinators", "sites", "trend", "staff", "lists",
            "breakdown")
    return {k: report[k] for k in keep}


# -- the same report either way --------------------------------------------------------------------
@pytest.mark.parametrize("args", [("week",), ("--period", "2026-11", "--trend", "6"),
                                  ("quarter", "--period", "2026-Q4", "--by", "coordinator"),
                                  ("week", "--site", "SH-DENT"),
                                  ("week", "--specialty", "hair")])
def test_reports_from_day_counts_equal_reports_from_rows(cli, db_url, tmp_path, args):  # type: ignore[no-untyped-def]
    build(cli, db_url, tmp_path)
    assert _verify(db_url) == {}
    from_days = report_json(cli, db_url, *args)
    assert from_days["figures"]["due"] > 0 or "--specialty" in args
    _count_rows(db_url)
    from_rows = report_json(cli, db_url, *args)
    assert _figures(from_days) == _figures(from_rows)


def test_reports_read_the_day_counts_when_the_days_fit(cli, db_url, tmp_path):  # type: ignore[no-untyped-def]
    """Proof that the fast path is taken (else the comparison above would hold trivially):
    a day row changed by hand shows in the report, and is ignored once the days do not fit."""
    build(cli, db_url, tmp_path)
    before = report_json(cli, db_url, "week")
    honest = before["figures"]
    with get_engine(db_url).begin() as conn:
        tasks = conn.execute(text("UPDATE report_task_days SET due = due + 100, reached = reached + 100 "
                                  "WHERE site = 'SH-DENT' AND day = '2026-11-18'")).rowcount
        calls = conn.execute(text("UPDATE report_call_days SET attempts = attempts + 7 "
                                  "WHERE day = '2026-11-17'")).rowcount
    assert tasks == 1 and calls >= 1
    tampered = report_json(cli, db_url, "week")
    assert tampered["figures"]["due"] == honest["due"] + 100
    assert tampered["figures"]["reached"] == honest["reached"] + 100
    assert sum(c["attempts"] for c in tampered["coordinators"]) == \
        sum(c["attempts"] for c in before["coordinators"]) + 7 * calls
    _count_rows(db_url)
    assert report_json(cli, db_url, "week")["figures"] == honest


def test_a_claim_changes_no_day_count_and_calls_move_their_answers(cli, db_url, tmp_path):  # type: ignore[no-untyped-def]
    tasks = build(cli, db_url, tmp_path)
    engine = get_engine(db_url)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT * FROM report_task_days ORDER BY 1, 2, 3")).all()
    cli("claim", "--site", "SH-DENT", "--count", "5", db=db_url, now="2026-11-23T09:30+08:00", user="zhang.li")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT * FROM report_task_days ORDER BY 1, 2, 3")).all() == before
        assert conn.execute(text("SELECT count(*) FROM tasks WHERE assignee = 'zhang.li'")).scalar() > 0

    # Someone corrects a call by hand: it was made a day later and did not reach the patient.
    with engine.begin() as conn, outside(conn):  # by hand: the triggers count any writer
        attempt = conn.execute(text("SELECT id FROM attempts WHERE task_id = :t AND outcome = 'reached'"),
                               {"t": tasks["R001"]}).scalar_one()
        conn.execute(text("UPDATE attempts SET outcome = 'no_answer', at = at + interval '1 day' WHERE id = :a"
                          if db_url.startswith("postgresql") else
                          "UPDATE attempts SET outcome = 'no_answer', at = datetime(at, '+1 day') || '.000000' "
                          "WHERE id = :a"), {"a": attempt})
    assert _verify(db_url) == {}
    # ... an answer is removed, then the call and its task altogether
    with engine.begin() as conn, outside(conn):
        conn.execute(text("DELETE FROM answers WHERE id = (SELECT min(id) FROM answers)"))
    assert _verify(db_url) == {}
    with engine.begin() as conn, outside(conn):
        task = tasks["R007"]
        conn.execute(text("DELETE FROM answers WHERE task_id = :t"), {"t": task})
        conn.execute(text("DELETE FROM escalations WHERE task_id = :t"), {"t": task})
        conn.execute(text("DELETE FROM complaints WHERE task_id = :t"), {"t": task})
        conn.execute(text("DELETE FROM attempts WHERE task_id = :t"), {"t": task})
        conn.execute(text("DELETE FROM tasks WHERE id = :t"), {"t": task})
    assert _verify(db_url) == {}
    from_days = report_json(cli, db_url, "week")
    _count_rows(db_url)
    assert _figures(from_days) == _figures(report_json(cli, db_url, "week"))


def test_the_chain_timezone_decides_the_days(cli, db_url, tmp_path):  # type: ignore[no-untyped-def]
    build(cli, db_url, tmp_path)
    shanghai = report_json(cli, db_url, "week")
    assert set_day_offset(db_url, ZoneInfo("Europe/London")) is True  # recounted at UTC+0
    assert _verify(db_url) == {}
    with get_engine(db_url).connect() as conn:
        assert rollups.offset(conn) == 0
    # Shanghai's midnights are not London's: the report counts rows, and says the same.
    assert _figures(report_json(cli, db_url, "week")) == _figures(shanghai)
    assert set_day_offset(db_url, SHANGHAI) is True
    assert set_day_offset(db_url, SHANGHAI) is False  # nothing to do
    assert _figures(report_json(cli, db_url, "week")) == _figures(shanghai)


def test_days_of_periods():  # no database
    starts = [datetime(2026, 11, d, tzinfo=SHANGHAI) for d in (16, 23, 30)]
    assert rollups.days_of(starts, 480) == [date(2026, 11, 16), date(2026, 11, 23), date(2026, 11, 30)]
    assert rollups.days_of(starts, 0) is None
    london = ZoneInfo("Europe/London")
    # March 2026 starts in winter time (UTC+0), April in summer time (UTC+1): one offset cannot serve both
    assert rollups.days_of([datetime(2026, 3, 1, tzinfo=london)], 0) == [date(2026, 3, 1)]
    assert rollups.days_of([datetime(2026, 3, 1, tzinfo=london), datetime(2026, 4, 1, tzinfo=london)], 0) is None
    assert rollups.zone_offset(SHANGHAI) == 480


# -- whatever is written, the day counts are a recount ---------------------------------------------
STATUSES = ("open", "completed", "unsuccessful", "refused", "wrong_number", "booked", "cancelled", "suppressed",
            "expired")
OUTCOMES = ("reached", "booked", "no_answer", "busy", "completed")
BASE = datetime(2026, 11, 1, 15, 0, tzinfo=UTC)  # near Shanghai's midnight: days split at 16:00 UTC

instants = st.integers(min_value=0, max_value=72 * 4).map(lambda q: BASE + timedelta(minutes=15 * q))
task_ops = st.one_of(
    st.tuples(st.just("task"), st.sampled_from(STATUSES), instants, st.integers(0, 3), st.sampled_from(["A", "B"]),
              st.sampled_from(["dental", "hair"])),
    st.tuples(st.just("status"), st.integers(0, 30), st.sampled_from(STATUSES), st.integers(0, 4), instants),
    st.tuples(st.just("move"), st.integers(0, 30), instants),
    st.tuples(st.just("call"), st.integers(0, 30), instants, st.sampled_from(OUTCOMES), st.sampled_from(["u1", "u2"])),
    st.tuples(st.just("answer"), st.integers(0, 60), st.sampled_from(["overall_satisfaction", "recommend"]),
              st.one_of(st.none(), st.integers(0, 10))),
    st.tuples(st.just("recall"), st.integers(0, 60), instants, st.sampled_from(OUTCOMES)),
    st.tuples(st.just("unanswer"), st.integers(0, 90)),
    st.tuples(st.just("uncall"), st.integers(0, 60)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(task_ops, min_size=1, max_size=25))
def test_day_counts_are_always_a_recount(db_url, ops):  # type: ignore[no-untyped-def]
    engine = get_engine(db_url)
    with engine.connect() as conn:
        tx = conn.begin()
        try:
            with outside(conn):  # any writer, the framework's or not: the counts stay a recount
                _apply(conn, ops)
            assert rollups.verify(conn) == {}
        finally:
            tx.rollback()


def _apply(conn, ops) -> None:  # type: ignore[no-untyped-def]
    conn.execute(insert(Patient), [{"external_id": "P", "name": "x", "gender": "F"}])
    patient = conn.execute(text("SELECT id FROM patients WHERE external_id = 'P'")).scalar_one()
    conn.execute(insert(Episode), [{"external_id": "E", "patient_id": patient, "site": "A", "specialty": "dental",
                                    "procedure": "implant", "trigger": "procedure", "occurred_at": BASE,
                                    "attributes": {}}])
    episode = conn.execute(text("SELECT id FROM episodes WHERE external_id = 'E'")).scalar_one()
    tasks: list[int] = []
    calls: list[int] = []
    answers: list[int] = []

    def pick(ids: list[int], i: int) -> int | None:
        return ids[i % len(ids)] if ids else None

    for op in ops:
        kind = op[0]
        if kind == "task":
            _, status, due, attempts, site, specialty = op
            row = {"episode_id": episode, "patient_id": patient, "site": site, "specialty": specialty,
                   "procedure": "p", "milestone": f"m{len(tasks)}", "purpose": "check", "channel": "phone",
                   "urgency": "routine", "due_at": due, "window_start": due - timedelta(hours=6),
                   "window_end": due + timedelta(hours=6), "target_at": due, "offset": "1d",
                   "window_earliest": "0d", "window_latest": "1d", "status": status, "attempts": attempts,
                   "attempts_logged": attempts,
                   "completed_at": due + timedelta(hours=attempts * 4)}
            tasks.append(conn.execute(insert(Task).returning(Task.id), [row]).scalar_one())
        elif kind == "status" and tasks:
            _, i, status, attempts, done = op
            conn.execute(Task.__table__.update().where(Task.id == pick(tasks, i)).values(
                status=status, attempts=attempts, attempts_logged=attempts, completed_at=done))
        elif kind == "move" and tasks:
            conn.execute(Task.__table__.update().where(Task.id == pick(tasks, op[1])).values(due_at=op[2]))
        elif kind == "call" and tasks:
            _, i, at, outcome, by = op
            task = pick(tasks, i)
            site = conn.execute(text("SELECT site FROM tasks WHERE id = :t"), {"t": task}).scalar_one()
            calls.append(conn.execute(insert(Attempt).returning(Attempt.id), [
                {"task_id": task, "at": at, "site": site, "by": by, "outcome": outcome}]).scalar_one())
        elif kind == "answer" and calls:
            _, i, question, number = op
            call = pick(calls, i)
            task = conn.execute(text("SELECT task_id FROM attempts WHERE id = :a"), {"a": call}).scalar_one()
            answers.append(conn.execute(insert(Answer).returning(Answer.id), [
                {"task_id": task, "attempt_id": call, "question": question, "dimension": None,
                 "value": number, "number": number}]).scalar_one())
        elif kind == "recall" and calls:
            _, i, at, outcome = op
            conn.execute(Attempt.__table__.update().where(Attempt.id == pick(calls, i)).values(at=at, outcome=outcome))
        elif kind == "unanswer" and answers:
            answer = answers.pop(op[1] % len(answers))
            conn.execute(Answer.__table__.delete().where(Answer.id == answer))
        elif kind == "uncall" and calls:
            call = calls.pop(op[1] % len(calls))
            gone = [a for (a,) in conn.execute(text("SELECT id FROM answers WHERE attempt_id = :c"), {"c": call})]
            answers[:] = [a for a in answers if a not in gone]
            conn.execute(Answer.__table__.delete().where(Answer.attempt_id == call))
            conn.execute(Attempt.__table__.delete().where(Attempt.id == call))


# -- migration ---------------------------------------------------------------------------------------
def test_0004_counts_what_is_already_there(cli, db_url, tmp_path):  # type: ignore[no-untyped-def]
    build(cli, db_url, tmp_path)
    expected = report_json(cli, db_url, "week")
    _to(db_url, "0003", up=False)
    with get_engine(db_url).connect() as conn:
        tables = set(conn.dialect.get_table_names(conn))
    assert "report_task_days" not in tables
    from core.db.migrate import upgrade

    upgrade(db_url)
    assert _verify(db_url) == {}
    with get_engine(db_url).connect() as conn:
        leads = conn.execute(text('SELECT DISTINCT "trigger" FROM tasks WHERE procedure = \'consultation\'')).all()
    assert leads == [("consultation",)]
    assert _figures(report_json(cli, db_url, "week")) == _figures(expected)
    assert expected["sales"]["leads"] == 2


def test_db_recount_checks_and_repairs(cli, db_url, tmp_path):  # type: ignore[no-untyped-def]
    build(cli, db_url, tmp_path)
    assert "agree" in cli("db", "recount", "--check", db=db_url).output
    with get_engine(db_url).begin() as conn:  # a restore that lost some day rows
        conn.execute(text("DELETE FROM report_task_days WHERE site = 'SH-DENT'"))
    broken = cli("db", "recount", "--check", db=db_url, ok=False)
    assert broken.exit_code == 1 and "report_task_days" in broken.output
    cli("db", "recount", db=db_url)
    assert _verify(db_url) == {}


def _split_into_parts(url: str) -> None:
    """Every day row split in two (as a bulk load's rows appended beside them would be): its parts carry
    twice its counts, the day row minus its counts; added up per key, nothing changed."""
    with get_engine(url).begin() as conn:
        for rollup in rollups.ROLLUPS:
            names = ", ".join(f'"{c}"' for c in rollup.columns)
            values = ", ".join([*(f'"{k}"' for k in rollup.keys), *(f'2 * "{c}"' for c in rollup.counts),
                                *(f'"{c}"' for c, _ in rollup.extremes)])
            conn.execute(text(f"INSERT INTO {rollup.parts} ({names}) SELECT {values} FROM {rollup.table}"))
            conn.execute(text(f"UPDATE {rollup.table} SET " + ", ".join(f'"{c}" = -"{c}"' for c in rollup.counts)))


def _sums(url: str) -> dict[str, list[tuple]]:  # type: ignore[type-arg]
    """The day tables' own rows, added up per key (what is there without the parts)."""
    with get_engine(url).connect() as conn:
        out = {}
        for rollup in rollups.ROLLUPS:
            keys = ", ".join(f'"{k}"' for k in rollup.keys)
            sums = [f'SUM("{c}")' for c in rollup.counts]
            changed = " OR ".join(f"{s} <> 0" for s in sums)
            rows = conn.execute(text(f"SELECT {keys}, {', '.join(sums)} FROM {rollup.table} GROUP BY {keys} "
                                     f"HAVING {changed} ORDER BY {keys}")).all()
            out[rollup.table] = [tuple(str(v) if isinstance(v, date) else round(float(v), 6)
                                       if isinstance(v, float) else v for v in row) for row in rows]
        return out


def test_reports_add_up_the_rows_bulk_loads_append_beside_the_day_tables(cli, db_url, tmp_path):  # type: ignore[no-untyped-def]
    """A bulk load appends its day rows to the day tables' parts (migration 0019): the reports, the check
    and the recount add them up with the day tables; downgrading adds them into the day tables."""
    build(cli, db_url, tmp_path)
    whole = _sums(db_url)
    before = report_json(cli, db_url, "--period", "2026-11", "--trend", "6", "--by", "coordinator")
    _split_into_parts(db_url)
    assert _sums(db_url) != whole  # the day tables alone are wrong now
    assert _verify(db_url) == {}
    after = report_json(cli, db_url, "--period", "2026-11", "--trend", "6", "--by", "coordinator")
    assert _figures(after) == _figures(before)
    _to(db_url, "0018", up=False)  # the parts' counts go into the day tables before the parts go
    assert _sums(db_url) == whole
    _to(db_url, "0019", up=True)
    _split_into_parts(db_url)
    cli("db", "recount", db=db_url)  # recounted into the day tables, the parts emptied
    assert _sums(db_url) == whole
    with get_engine(db_url).connect() as conn:
        assert all(conn.execute(text(f"SELECT count(*) FROM {r.parts}")).scalar_one() == 0 for r in rollups.ROLLUPS)
