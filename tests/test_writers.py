"""Concurrent writers lose nothing; every writer of tasks, attempts and answers goes through one unit of work.

Eight real processes run ``followup record`` at once on the same twenty tasks, on SQLite and on
PostgreSQL: every attempt is stored and counted once, each task becomes final once, whoever
comes after is refused in one line, and nobody sees a traceback.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from clinic_data import seed

ROOT = Path(__file__).resolve().parents[1]
WORKERS = 8
TASKS = 20

def recorder(url: str, now: str, user: str, ids: list[int], barrier, out) -> None:  # type: ignore[no-untyped-def]
    """One coordinator's process: waits for the others, then records on every task (in its own order)
    through the real CLI, and puts each command's exit code and output on ``out``."""
    try:
        import os

        from click.testing import CliRunner

        from core.cli.main import cli

        for name in [k for k in os.environ if k.startswith("FOLLOWUP_")]:
            os.environ.pop(name)
        os.environ["FOLLOWUP_GUARD_WRITES"] = "1"  # the unit-of-work guard is on in the workers too
        runner = CliRunner()
        barrier.wait()  # every worker begins at once
        done = []
        for task in ids:
            result = runner.invoke(cli, ["--db", url, "--now", now, "--as", user, "record", str(task), "--outcome",
                                         "no_answer", "--locale", "en"])
            crash = result.exception if not isinstance(result.exception, (SystemExit, type(None))) else None
            done.append({"task": int(task), "code": result.exit_code, "output": result.output,
                         "crash": repr(crash) if crash else None})
        out.put((user, now, done))
    except BaseException as exc:  # reported by the test, not lost in the child
        import traceback

        out.put((user, now, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


@pytest.fixture
def twenty(cli, tmp_path: Path, db_url: str) -> tuple[str, list[int]]:  # type: ignore[no-untyped-def]
    """Twenty open tasks at SH-DENT (20 patients, one scaling each)."""
    seed(cli, tmp_path, db_url,
         [[f"C{i}", f"患者{i}", "F", "1980-01-01", f"1381234{i:04d}", "SH-DENT"] for i in range(TASKS)],
         [[f"CE{i}", f"C{i}", "SH-DENT", "dental", "scaling", "2026-11-22T10:00", "林雪"] for i in range(TASKS)])
    tasks = json.loads(cli("tasks", "--status", "open", "--format", "json", db=db_url).output)
    ids = sorted(t["id"] for t in tasks)
    assert len(ids) == TASKS
    return db_url, ids


def run_workers(url: str, ids: list[int], tmp_path: Path) -> list[list[dict]]:  # type: ignore[type-arg]
    """Eight processes, each recording no_answer on every task at its own time (2 h 5 min apart)."""
    from processes import worker_context

    ctx = worker_context()
    barrier, out = ctx.Barrier(WORKERS, timeout=120), ctx.Queue()
    base = datetime.fromisoformat("2026-11-23T10:00+08:00")
    procs = []
    for i in range(WORKERS):
        now = (base + i * timedelta(hours=2, minutes=5)).isoformat()
        order = ids[i * 3 % TASKS:] + ids[:i * 3 % TASKS]  # each starts somewhere else: real contention
        if i % 2:
            order.reverse()
        user = ("zhang.li", "admin")[i % 2]  # staff of the demo chain who may record at SH-DENT (core/access.py)
        procs.append(ctx.Process(target=recorder, args=(url, now, user, order, barrier, out)))
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0, "a worker did not finish"
    assert [r for _, _, r in results if isinstance(r, str)] == []
    return [r for _, _, r in results]


def test_eight_coordinators_recording_at_once_lose_nothing(cli, twenty, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    from core.db.engine import get_engine

    url, ids = twenty
    results = [r for worker in run_workers(url, ids, tmp_path) for r in worker]
    assert len(results) == WORKERS * TASKS
    assert [r for r in results if r["crash"]] == []  # no traceback, no "database is locked"
    recorded = [r for r in results if r["code"] == 0]
    refused = [r for r in results if r["code"] != 0]
    assert len(recorded) == 3 * TASKS  # the limit: three counted failed attempts per task
    for task in ids:
        outputs = [r["output"] for r in recorded if r["task"] == task]
        # attempts 1, 2, 3 each told once, and "final" (unsuccessful) exactly once
        assert sorted(o.split("(attempt ")[1][:1] for o in outputs) == ["1", "2", "3"], outputs
        assert sum("→ unsuccessful" in o for o in outputs) == 1, outputs
        assert sum("failed 3/3" in o for o in outputs) == 1, outputs
    for r in refused:  # one line, saying who made it final and when
        lines = r["output"].strip().splitlines()
        assert len(lines) == 1, r
        assert f"task {r['task']} is unsuccessful, not open: " in lines[0] and "recorded its last attempt at" \
            in lines[0], r
    with get_engine(url).connect() as conn:
        rows = conn.execute(text("SELECT t.id, t.status, t.attempts, t.failed_attempts, t.attempts_logged, "
                                 "(SELECT COUNT(*) FROM attempts a WHERE a.task_id = t.id) FROM tasks t "
                                 "WHERE t.id IN (" + ", ".join(map(str, ids)) + ")")).all()
    assert sorted(tuple(r)[1:] for r in rows) == [("unsuccessful", 3, 3, 3, 3)] * TASKS
    assert "agree" in cli("db", "recount", "--check", db=url).output


def test_recount_check_finds_counters_that_disagree_with_the_attempt_rows(cli, twenty) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    from core.db.engine import get_engine
    from core.db.uow import outside

    url, ids = twenty
    cli("record", str(ids[0]), "--outcome", "no_answer", db=url, now="2026-11-23T10:00+08:00", user="zhang.li")
    assert "agree" in cli("db", "recount", "--check", db=url).output
    with get_engine(url).begin() as conn, outside(conn):  # a lost update, as writers without a row lock made
        conn.execute(text("UPDATE tasks SET attempts = 2, attempts_logged = 2 WHERE id = :t"), {"t": ids[0]})
    broken = cli("db", "recount", "--check", db=url, ok=False)
    assert broken.exit_code == 1
    assert f"task {ids[0]}: attempts 2 (rows: 1), attempts_logged 2 (rows: 1)" in broken.output
    assert "report_task_days" not in broken.output  # attempted is still 1: the day counts agree


# -- one unit of work, and the guard that catches a writer bypassing it ------------------------------
def _task_count(url: str, where: str = "1 = 1") -> int:
    from sqlalchemy import text

    from core.db.engine import get_engine

    with get_engine(url).connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM tasks WHERE {where}")).scalar_one()


def test_the_guard_is_on_in_the_test_suite() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from core.db.uow import GUARD_ENV, _guard

    assert event.contains(Engine, "before_cursor_execute", _guard)
    assert os.environ[GUARD_ENV] == "1"  # and in the CLI processes tests start


@pytest.mark.parametrize("bypass", ["core update", "orm change", "orm insert", "driver sql", "cte update",
                                    "driver copy"])
def test_a_writer_that_bypasses_the_unit_of_work_fails(twenty, bypass: str) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    from core.db.engine import session_scope
    from core.db.models import Attempt, Task
    from core.db.uow import UnitOfWorkBypassed, inside

    url, ids = twenty
    now = datetime.fromisoformat("2026-11-23T10:00+08:00")
    with pytest.raises(UnitOfWorkBypassed, match=r"(tasks|attempts) written outside a unit of work"):
        with session_scope(url) as session:
            if bypass == "core update":
                session.execute(update(Task).where(Task.id == ids[0]).values(status="cancelled"))
            elif bypass == "orm change":
                session.get(Task, ids[0]).status = "cancelled"  # written at commit, outside any unit
            elif bypass == "orm insert":
                session.add(Attempt(task_id=ids[0], at=now, site="SH-DENT", by="x", outcome="no_answer"))
            elif bypass == "driver sql":
                session.connection().exec_driver_sql(f"UPDATE tasks SET status = 'cancelled' WHERE id = {ids[0]}")
            elif bypass == "cte update":
                session.connection().exec_driver_sql(
                    f"WITH x AS (SELECT {ids[0]} AS id) UPDATE tasks SET status = 'cancelled' "
                    "WHERE id IN (SELECT id FROM x)")
            else:  # scheduling's COPY goes to the driver directly: it asks the guard itself
                inside(session.connection(), "COPY tasks (episode_id) FROM STDIN")
    assert _task_count(url, "status = 'cancelled'") == 0  # nothing written


def test_writes_inside_a_unit_of_work_pass_and_outside_is_said_out_loud(twenty) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    from core.db.engine import session_scope
    from core.db.models import Task
    from core.db.uow import outside, unit_of_work

    url, ids = twenty
    now = datetime.fromisoformat("2026-11-23T10:00+08:00")
    with session_scope(url) as session:
        with unit_of_work(session, sites=["SH-DENT"], user="zhang.li", now=now, action="test") as uow:
            session.execute(update(Task).where(Task.id == ids[0]).values(status="cancelled"))
            with unit_of_work(session, sites=["SH-DENT"], user="zhang.li", now=now) as inner:
                assert inner is uow  # nested units share the outer one
                session.get(Task, ids[1]).status = "cancelled"
            uow.audit("test", entity="task", entity_id=ids[0])
        with outside(session):  # a test building a state by hand says so
            session.execute(update(Task).where(Task.id == ids[2]).values(status="cancelled"))
    assert _task_count(url, "status = 'cancelled'") == 3


def test_the_unit_of_work_takes_the_sites_turns_on_postgresql(twenty) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    from core.db import rollups
    from core.db.engine import session_scope
    from core.db.uow import unit_of_work

    url, _ = twenty
    if not url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: no turns to take")
    now = datetime.fromisoformat("2026-11-23T10:00+08:00")
    held = text("SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                "AND classid = :ns ORDER BY objid")
    with session_scope(url) as session:
        assert session.execute(held, {"ns": rollups.SITE_LOCKS}).all() == []
        with unit_of_work(session, sites=["SH-DENT", "BJ-HOSP"], user="x", now=now) as uow:
            assert len(session.execute(held, {"ns": rollups.SITE_LOCKS}).all()) == 2
            uow.turns(["SH-DENT"])  # taken once per transaction
            assert len(session.execute(held, {"ns": rollups.SITE_LOCKS}).all()) == 2


def test_a_unit_of_work_starting_the_transaction_holds_sqlites_write_lock(twenty) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    from sqlalchemy.engine import make_url

    from core.db.engine import session_scope
    from core.db.uow import unit_of_work

    url, _ = twenty
    if not url.startswith("sqlite"):
        pytest.skip("PostgreSQL locks rows")
    other = sqlite3.connect(make_url(url).database, timeout=0, isolation_level=None)
    now = datetime.fromisoformat("2026-11-23T10:00+08:00")
    with session_scope(url) as session, unit_of_work(session, user="x", now=now):
        with pytest.raises(sqlite3.OperationalError, match="locked"):  # BEGIN IMMEDIATE: writers wait for us
            other.execute("BEGIN IMMEDIATE")
    other.execute("BEGIN IMMEDIATE")  # our turn is over
    other.execute("ROLLBACK")
    other.close()


def test_the_access_check_is_asked_before_anything_is_written(cli, twenty, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The call point where roles will decide (helper security): a refusal there stores nothing."""
    from core.db.uow import UnitOfWork
    from core.errors import FollowupError

    url, ids = twenty
    asked: list[tuple[str, list[str]]] = []

    def check(self, action: str, *, sites=(), patient_id=None) -> None:  # type: ignore[no-untyped-def]
        asked.append((action, list(sites)))
        if action == "record":
            raise FollowupError("not allowed to record calls")

    monkeypatch.setattr(UnitOfWork, "check", check)
    refused = cli("record", str(ids[0]), "--outcome", "no_answer", db=url, now="2026-11-23T10:00+08:00",
                  user="zhang.li", ok=False)
    assert refused.exit_code == 1 and "not allowed to record calls" in refused.output
    assert ("record", ["SH-DENT"]) in asked
    assert _task_count(url, "attempts_logged > 0") == 0
    cli("patients", "dnc", "C1", db=url, now="2026-11-23T10:00+08:00", user="admin")  # an admin's
    assert ("dnc", ["SH-DENT"]) in asked
